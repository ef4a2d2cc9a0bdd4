"""What every CLI command shares: common options and argument types, the printing progress,
loading a model or a session, reading a face (``--source``: seed, project, latent or photo) and
writing images.

``stylestudio.cli`` and every module in :mod:`stylestudio.commands` import these from here; no
command module imports ``stylestudio.cli`` (it imports them: one direction only).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ..engine.limits import (MAX_LATENT_ABS, MAX_LATENT_DIMS, MAX_LATENT_VALUES, MAX_LATENTS, MAX_SIZE, MIN_SIZE,
                             PHOTO_SUFFIXES, PSI_MAX, PSI_MIN, SEED_MAX, SEED_MIN)
from ..errors import InputError

def add_model_options(p: argparse.ArgumentParser, output: bool = True) -> None:
    """The options every image-writing command shares."""
    p.add_argument("--model", default=None, help="model name (default: the built-in face model)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N, mps")
    if output:
        p.add_argument("--size", type=size_arg, default=None,
                       help=f"output size in pixels, {MIN_SIZE} … {MAX_SIZE} (default: model resolution)")
        p.add_argument("-o", "--output", type=Path, required=True, help="output file (.png .jpg .tif, or .npy)")


def progress_printer(message: str, fraction: float) -> None:
    print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def finish_on_ctrl_c(what: str = "the run") -> Iterator[Callable[[], bool] | None]:
    """A training's ``finish``: the first Ctrl+C ends it after the current step and keeps what it
    learnt (the panels' *Finish now*), a second aborts. Yields None, leaving Ctrl+C as it was, under
    torchrun (its launcher passes the signal to every rank and then ends them itself), off the main
    thread (only there can a handler be set) and where SIGINT is ignored (a job started in the
    background with ``nohup … &``: a stray SIGINT must not end it early)."""
    from ..engine.distributed import launched_size

    if launched_size() > 1 or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield None
        return
    asked = threading.Event()

    def first_finishes(signum, frame) -> None:
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()
        print(f"finishing {what} after the current step and keeping what it learnt (Ctrl+C again to abort)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, first_finishes)
    try:
        yield asked.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def load_generator(args: argparse.Namespace):
    """(model name, generator) for ``--model``/``--device``; the default model is fetched on first use."""
    from ..engine.device import pick_device
    from ..engine.model_store import DEFAULT_MODEL, ModelStore

    device = pick_device(getattr(args, "device", None))
    name = args.model or DEFAULT_MODEL
    return name, ModelStore().load(name, device=device, progress=progress_printer)


def cli_session(args: argparse.Namespace):
    """(model name, session) for ``--model``/``--device``, the model loaded with printed progress."""
    from ..engine.model_store import DEFAULT_MODEL
    from ..engine.session import Session

    session = Session(device=getattr(args, "device", None) or "auto")
    name = args.model or DEFAULT_MODEL
    session.model(name, progress=progress_printer)
    return name, session


# ---- argument validation -----------------------------------------------------------------------


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{what} must be {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{what} must be a finite number, got {text!r}")
    return value


def bounded(kind: type, lo: float | None, hi: float | None, what: str = "the value"):
    """An argparse ``type`` for a finite ``kind`` (int or float) within ``lo`` … ``hi`` (None: open)."""

    def parse(text: str):
        value = _number(text, kind, what)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            lo_s = "−∞" if lo is None else (f"{lo:g}" if kind is float else str(lo))
            hi_s = "∞" if hi is None else (f"{hi:g}" if kind is float else str(hi))
            raise argparse.ArgumentTypeError(f"{what} must be between {lo_s} and {hi_s}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def steps_arg(text: str) -> int:
    """Optimisation steps (``--steps``, ``--pti-steps``): 0 … 100000."""
    return bounded(int, 0, 100000, "the number of steps")(text)


def time_budget_arg(text: str) -> float:
    """``--time-budget``: seconds for the whole inversion, 0 or ``none`` for no limit (at most a day)."""
    if text.strip().lower() in ("none", "0"):
        return 0.0
    return bounded(float, 1.0, 86400.0, "--time-budget (seconds, or 0/none for no limit)")(text)


def add_pti_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--pti`` / ``--no-pti`` (``invert`` and ``batch``); neither: PTI only for a far face."""
    from ..engine.inversion import InversionSettings

    s = InversionSettings
    g = p.add_mutually_exclusive_group()
    g.add_argument("--pti", dest="pti", action="store_const", const="on", default="auto",
                   help=f"fine-tune the generator around {what} for identity (PTI). Without --pti or --no-pti, "
                        "PTI joins only for a face the latent alone cannot fit (still at LPIPS ≥ "
                        f"{s.pti_far_lpips:g} when {s.pti_far_at * 100:.0f} %% of the way), in the same time")
    # (%% because argparse formats help texts)
    g.add_argument("--no-pti", dest="pti", action="store_const", const="off", help="never fine-tune the generator")
    p.add_argument("--pti-steps", type=steps_arg, default=None, help="the most fine-tuning steps (default 30)")


def inversion_settings(args: argparse.Namespace, unbudgeted: bool = False):
    """The InversionSettings the inversion flags ask for (``invert`` and ``batch`` share them;
    ``--no-estimate``/``--no-encoder`` only where the command has them). ``unbudgeted``: without
    ``--time-budget`` there is no time limit (the batch: the same files on every run)."""
    import dataclasses

    from ..engine.inversion import InversionSettings, with_pti

    changes: dict = {"estimate": not getattr(args, "no_estimate", False),
                     "use_encoder": not getattr(args, "no_encoder", False)}
    if args.steps is not None:
        changes.update(steps=args.steps, optimise=args.steps > 0)
    if args.time_budget is not None:
        changes["time_budget"] = args.time_budget or None  # 0: no limit
    elif unbudgeted:
        changes["time_budget"] = None
    if args.pti_steps is not None:
        changes["pti_steps"] = args.pti_steps
    return with_pti(dataclasses.replace(InversionSettings(), **changes), args.pti)


#: argparse types for the options every command shares; the bounds live in engine/limits.py.
psi_arg = bounded(float, PSI_MIN, PSI_MAX, "truncation ψ")
size_arg = bounded(int, MIN_SIZE, MAX_SIZE, "the size in pixels")
seed_arg = bounded(int, SEED_MIN, SEED_MAX, "the seed")
finite_float = bounded(float, None, None, "the value")


def check_seed(seed: int, what: str = "seed") -> int:
    if not SEED_MIN <= seed <= SEED_MAX:
        raise InputError(f"{what} {seed} is out of range: seeds run from {SEED_MIN} to {SEED_MAX} (2^32 − 1)")
    return seed


def check_psi(psi: float, what: str = "ψ") -> float:
    if not (math.isfinite(psi) and PSI_MIN <= psi <= PSI_MAX):
        raise InputError(f"truncation {what} must be between {PSI_MIN:g} and {PSI_MAX:g}, got {psi}")
    return psi


def output_path(path: Path | None, *inputs: Path | str | None) -> Path | None:
    """``path`` after :func:`safe_io.check_output`: called first thing by every command that writes,
    so a missing or unwritable folder, or an output that is one of the inputs, is found at once."""
    from ..safe_io import check_output, os_error_message

    if path is None:
        return None
    try:
        return check_output(Path(path), inputs=inputs)
    except OSError as exc:  # e.g. a name too long for the file system
        raise InputError(os_error_message(Path(path), exc)) from None


# ---- faces and latents from the command line ----------------------------------------------------


def parse_source(spec: str, psi: float = 0.7):
    """A face given on the command line: ``seed:N``, a ``.stylestudio`` project, a W/W+ ``.npy``
    or a photo (:data:`~stylestudio.engine.limits.PHOTO_SUFFIXES`).

    Returns an :class:`~stylestudio.engine.document.EditDocument` (``model`` left empty for a
    bare latent or seed; the caller fills it in).
    """
    from ..engine.document import EditDocument, LatentSource, SeedSource
    from ..engine.imageio import check_input_file
    from ..engine.project import SUFFIX, load_project

    if spec.startswith("seed:"):
        try:
            seed = int(spec[5:])
        except ValueError:
            raise InputError(f"bad seed in {spec!r}: expected seed:N with an integer N") from None
        check_seed(seed, f"seed in {spec!r}:")
        check_psi(psi)
        return EditDocument(model="", source=SeedSource(seed=seed, psi=psi), title=f"seed {seed}")
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix == SUFFIX:
        if os.path.lexists(path):
            check_input_file(path, "project")
        return load_project(path)
    if suffix == ".npy":
        return EditDocument(model="", source=LatentSource(wplus=load_latent(path), name=path.stem), title=path.stem)
    if suffix in PHOTO_SUFFIXES:
        return photo_document(path)
    raise InputError(f"cannot use {spec!r} as a face: give seed:N, a .stylestudio project, a .npy latent or a "
                     f"photo ({' '.join(PHOTO_SUFFIXES)})")


def check_photo_suffix(path: Path) -> None:
    """The same photo types everywhere: ``invert`` takes what ``--source`` takes."""
    if path.suffix.lower() not in PHOTO_SUFFIXES:
        raise InputError(f"{path}: not a photo type StyleStudio reads (use {' '.join(PHOTO_SUFFIXES)})")


def choose_face(path: Path, index: int | None):
    """(photo array, faces, chosen face) with the user-facing errors for none / several."""
    from ..engine.face.align import load_photo
    from ..engine.face.landmarks import detect_faces

    photo = load_photo(path)
    faces = detect_faces(photo, progress_printer)
    if not faces:
        raise InputError(f"no face found in {path.name} (faces need to be at least ~40 pixels tall and "
                         "turned roughly towards the camera)")
    if index is None:
        if len(faces) > 1:
            listing = "\n".join(f"  --face {i}: {f.describe()}" for i, f in enumerate(faces))
            raise InputError(f"{path.name} has {len(faces)} faces (largest first); choose one:\n{listing}")
        index = 0
    if not 0 <= index < len(faces):
        raise InputError(f"--face {index}: {path.name} has {len(faces)} face{'s' if len(faces) > 1 else ''} "
                         f"(0…{len(faces) - 1})")
    return photo, faces, faces[index]


def photo_document(path: Path):
    """``--source photo.jpg`` for every command: one face, inverted on first render (no PTI)."""
    from ..engine.document import EditDocument
    from ..engine.photo import photo_source_from_file

    _, faces, face = choose_face(path, None)
    print(f"note: inverting {path.name} now; `stylestudio invert` saves the result for reuse", file=sys.stderr)
    return EditDocument(model="", source=photo_source_from_file(path, face.landmarks, 0), title=path.stem)


def _npy_header(path: Path, f) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, read without loading (or unpickling) anything."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(f)
        else:
            raise InputError(f"{path}: unsupported .npy version {version[0]}.{version[1]} (save it with numpy.save)")
    except InputError:
        raise
    except (ValueError, SyntaxError, EOFError, OSError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable .npy array ({reason})") from None
    return tuple(int(d) for d in shape), dtype


def load_latent(path: Path) -> np.ndarray:
    """A latent .npy as float32, validated before it is loaded.

    The header is read first: only plain numeric arrays of at most
    :data:`~stylestudio.engine.limits.MAX_LATENT_DIMS` dimensions, :data:`MAX_LATENTS` latents and
    :data:`MAX_LATENT_VALUES` numbers are loaded (object arrays would need unpickling and are never
    loaded), then every value must be finite and within ±:data:`MAX_LATENT_ABS`.
    """
    from ..engine.imageio import check_input_file

    path = Path(path)
    st = check_input_file(path, "latent .npy")
    try:
        with open(path, "rb") as f:
            shape, dtype = _npy_header(path, f)
            if dtype.hasobject or dtype.fields is not None or dtype.kind not in "fiu":
                raise InputError(f"{path}: expected a plain numeric array, got dtype {dtype}")
            if not 1 <= len(shape) <= MAX_LATENT_DIMS:
                raise InputError(f"{path}: a latent has 1 to {MAX_LATENT_DIMS} dimensions, this array has shape {shape}")
            count = math.prod(shape)
            if count == 0:
                raise InputError(f"{path}: the array is empty (shape {shape})")
            if count > MAX_LATENT_VALUES or (len(shape) > 1 and shape[0] > MAX_LATENTS):
                raise InputError(f"{path}: shape {shape} is too large: at most {MAX_LATENTS} latents and "
                                 f"{MAX_LATENT_VALUES} numbers in one file")
            if st.st_size - f.tell() < count * dtype.itemsize:
                raise InputError(f"{path}: the file is truncated (its header promises shape {shape})")
            f.seek(0)
            arr = np.load(f, allow_pickle=False)
    except InputError:
        raise
    except OSError as exc:
        from ..safe_io import os_error_message

        raise InputError(os_error_message(path, exc)) from None
    except (ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({str(exc)[:160]})") from None
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise InputError(f"{path}: the latent contains NaN or infinite values")
    if np.abs(out).max() > MAX_LATENT_ABS:
        raise InputError(f"{path}: the latent has values beyond ±{MAX_LATENT_ABS:g} "
                         f"(largest {float(np.abs(out).max()):.3g}); it is not a latent of a face model")
    return out


# ---- writing -------------------------------------------------------------------------------------


def _resized(img: torch.Tensor, size: int | None) -> torch.Tensor:
    img = img.detach().float()
    if size is not None and size != img.shape[-1]:
        img = torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False)
    return img


def _write_raw(f, batch: torch.Tensor, size: int | None) -> int:
    arr = _resized(batch, size).cpu().numpy().astype("<f4", copy=False)
    f.write(np.ascontiguousarray(arr).tobytes())
    return int(arr.shape[0])


def write_images(path: Path, batches: Iterable[torch.Tensor], count: int, size: int | None = None,
                 recipe: dict | None = None, quality: int = 95) -> None:
    """Write ``count`` images arriving in ``batches`` (NCHW tensors) as they come, so memory holds
    one batch, not all of them.

    ``.npy``: one raw float32 [count, C, H, W] file, unclamped (its header is written first, then
    each batch); image types: ``path`` for one image, ``STEM-i.SUFFIX`` for several, 8-bit. Every
    file is written atomically.
    """
    from numpy.lib import format as npy

    from ..engine.imageio import check_size, image_format, resize, save_image
    from ..engine.render import to_uint8
    from ..safe_io import atomic_write

    path = Path(path)
    check_size(size)
    if path.suffix.lower() == ".npy":
        it = iter(batches)

        def write(f) -> None:
            first = next(it)
            side = size or first.shape[-1]
            shape = (count, int(first.shape[1]), side, side)
            npy.write_array_header_1_0(f, {"descr": npy.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                                           "shape": shape})
            written = _write_raw(f, first, size)
            del first  # each batch is dropped before the next one is drawn
            for batch in it:
                written += _write_raw(f, batch, size)
                del batch
            if written != count:
                raise RuntimeError(f"write_images: got {written} images, expected {count}")

        atomic_write(path, write)
        return
    image_format(path)
    index = 0
    for batch in batches:
        for i in range(batch.shape[0]):
            target = path if count == 1 else path.with_name(f"{path.stem}-{index}{path.suffix}")
            save_image(target, resize(to_uint8(batch[i : i + 1]), size), recipe, quality)
            index += 1
        del batch  # each batch is dropped before the next one is drawn


def write_image(path: Path, image: torch.Tensor, size: int | None = None, recipe: dict | None = None,
                quality: int = 95) -> None:
    """``.npy``: the raw float32 NCHW batch, unclamped; image types: one file per image, 8-bit."""
    write_images(path, [image], int(image.shape[0]), size, recipe, quality)


def add_installed_sliders_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--installed-sliders", action="store_true",
                        help="draw every slider with its installed library, also where the project keeps "
                             "the version it was saved with (default: as saved)")


def prepare_sliders(session, doc, label: str, installed: bool = False, say: bool = True):
    """The project's document as it is drawn, with one line for each way its sliders differ from
    the installed libraries: drawn from the project's copies (engine/edits/kept.py: not installed
    here, or as saved where the installed one changed) or, for projects saved before they kept
    copies, drawn with a changed installed entry (engine/edits/versions.py). ``installed``: draw
    the installed versions wherever they exist (``--installed-sliders``). ``say``: print the lines."""
    from ..engine.edits.kept import copies_messages, use_installed
    from ..engine.edits.versions import changed_entries, changed_message

    versions = session.library_versions(doc)
    drawn = session.drawn_from_copies(doc, versions)
    if installed and drawn:
        doc = use_installed(doc, drawn)
        versions = session.library_versions(doc)
        drawn = session.drawn_from_copies(doc, versions)
    if not say:
        return doc
    phrases = changed_entries(doc, versions)
    if phrases:
        print(f"warning: {changed_message(label, phrases)}", file=sys.stderr)
    for line in copies_messages(label, doc, drawn, remedy="--installed-sliders", install=""):
        print(f"note: {line}", file=sys.stderr)
    return doc


def save_stamped_project(path: Path, session, doc, thumbnail=None) -> None:
    """Save ``doc`` with its sliders stamped with the library versions they render with now, and
    copies of the libraries they read kept inside it."""
    from ..engine.project import save_project

    save_project(path, session.for_saving(doc), thumbnail=thumbnail)
