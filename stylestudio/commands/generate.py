"""``stylestudio generate`` (a face from a seed) and ``stylestudio render`` (raw latents → images)."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..engine.limits import PSI_MAX, PSI_MIN, SEED_MAX
from ..errors import InputError
from .common import (add_model_options, bounded, load_generator, load_latent, output_path, psi_arg, seed_arg,
                     write_image, write_images)

#: Latents synthesised (and written) at a time by ``render``: memory holds one chunk, not the batch.
RENDER_CHUNK = 4
cutoff_arg = bounded(int, 0, 1024, "--cutoff")


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="render the face of a seed",
                       description="Seed N means z = numpy.random.RandomState(N).randn(1, z_dim), "
                                   "the NVlabs convention, identical on every machine.")
    g.add_argument("--seed", type=seed_arg, required=True, help=f"0 … {SEED_MAX}")
    g.add_argument("--psi", type=psi_arg, default=0.7, help=f"truncation ψ, {PSI_MIN:g} … {PSI_MAX:g} (default 0.7)")
    g.add_argument("--cutoff", type=cutoff_arg, default=None, help="truncate only the first K W+ rows")
    add_model_options(g)
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("render", help="render latents from .npy files (batches welcome)")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--z", type=Path, help="z [N, z_dim]")
    src.add_argument("--w", type=Path, help="w [N, w_dim]")
    src.add_argument("--wplus", type=Path, help="W+ [N, num_ws, w_dim]")
    r.add_argument("--psi", type=psi_arg, default=1.0, help=f"truncation ψ for --z, {PSI_MIN:g} … {PSI_MAX:g} (default 1)")
    r.add_argument("--cutoff", type=cutoff_arg, default=None)
    r.add_argument("--noise", choices=("const", "none", "random"), default="const")
    add_model_options(r)
    r.set_defaults(func=cmd_render)


def cmd_generate(args: argparse.Namespace) -> int:
    from ..engine.document import EditDocument, SeedSource
    from ..engine.render import Renderer

    output_path(args.output)
    name, gen = load_generator(args)
    doc = EditDocument(model=name, source=SeedSource(args.seed, args.psi, args.cutoff), title=f"seed {args.seed}")
    image = Renderer(gen, name).render(doc)
    write_image(args.output, image, args.size, recipe={"model": name, **doc.source.to_json()})
    print(args.output)
    return 0


def _check(arr: torch.Tensor, shape: tuple, what: str) -> torch.Tensor:
    if arr.dim() == len(shape) - 1:
        arr = arr[None]
    if arr.dim() != len(shape) or tuple(arr.shape[1:]) != shape[1:]:
        want = "[N, " + ", ".join(str(s) for s in shape[1:]) + "]"
        raise InputError(f"{what} has shape {tuple(arr.shape)}, this model needs {want}")
    return arr


@torch.no_grad()
def cmd_render(args: argparse.Namespace) -> int:
    """Render latents ``RENDER_CHUNK`` at a time, each chunk written before the next is drawn."""
    src = args.z if args.z is not None else args.w if args.w is not None else args.wplus
    output_path(args.output, src)
    latents = torch.from_numpy(load_latent(src))  # validated before the model is loaded
    name, gen = load_generator(args)
    dev = gen.device
    if args.z is not None:
        lat = _check(latents, (0, gen.z_dim), f"{src}: z")
    elif args.w is not None:
        lat = _check(latents, (0, gen.w_dim), f"{src}: w")
    else:
        lat = _check(latents, (0, gen.num_ws, gen.w_dim), f"{src}: W+")

    def chunks():
        for i in range(0, lat.shape[0], RENDER_CHUNK):
            part = lat[i : i + RENDER_CHUNK].to(dev)
            if args.z is not None:
                ws = gen.mapping(part, args.psi, args.cutoff)
            elif args.w is not None:
                ws = gen.broadcast_w(part)
            else:
                ws = part
            yield gen.synthesis(ws, noise_mode=args.noise).cpu()

    write_images(args.output, chunks(), int(lat.shape[0]), args.size, recipe={"model": name})
    print(args.output)
    return 0
