"""``stylestudio generate`` (a face from a seed) and ``stylestudio render`` (raw latents → images)."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..cli import add_model_options, load_generator, load_latent, write_image
from ..errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="render the face of a seed",
                       description="Seed N means z = numpy.random.RandomState(N).randn(1, z_dim), "
                                   "the NVlabs convention, identical on every machine.")
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--psi", type=float, default=0.7, help="truncation ψ (default 0.7)")
    g.add_argument("--cutoff", type=int, default=None, help="truncate only the first K W+ rows")
    add_model_options(g)
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("render", help="render latents from .npy files (batches welcome)")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--z", type=Path, help="z [N, z_dim]")
    src.add_argument("--w", type=Path, help="w [N, w_dim]")
    src.add_argument("--wplus", type=Path, help="W+ [N, num_ws, w_dim]")
    r.add_argument("--psi", type=float, default=1.0, help="truncation ψ for --z (default 1)")
    r.add_argument("--cutoff", type=int, default=None)
    r.add_argument("--noise", choices=("const", "none", "random"), default="const")
    add_model_options(r)
    r.set_defaults(func=cmd_render)


def cmd_generate(args: argparse.Namespace) -> int:
    from ..engine.document import EditDocument, SeedSource
    from ..engine.render import Renderer

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
    name, gen = load_generator(args)
    dev = gen.device
    if args.z is not None:
        z = _check(torch.from_numpy(load_latent(args.z)), (0, gen.z_dim), "z")
        ws = gen.mapping(z.to(dev), args.psi, args.cutoff)
    elif args.w is not None:
        w = _check(torch.from_numpy(load_latent(args.w)), (0, gen.w_dim), "w")
        ws = gen.broadcast_w(w.to(dev))
    else:
        ws = _check(torch.from_numpy(load_latent(args.wplus)), (0, gen.num_ws, gen.w_dim), "W+").to(dev)
    images = [gen.synthesis(ws[i : i + 4], noise_mode=args.noise) for i in range(0, ws.shape[0], 4)]
    write_image(args.output, torch.cat(images), args.size, recipe={"model": name})
    print(args.output)
    return 0
