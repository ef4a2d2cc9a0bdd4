"""A whole training run: data, resume, checkpoints, stopping, and the finished native model.

A run lives in ``<data>/training/<name>/``: ``dataset.npz`` (the prepared pictures),
``checkpoint.pt`` (everything :class:`Trainer` needs to continue exactly, written atomically
every few minutes, on cancel and at the end), ``fakes.png`` (the EMA generator on fixed latents,
refreshed at the start, every ``fakes_seconds`` and at each checkpoint, so a user can watch it
learn; the same grid goes to ``on_fakes``, the GUI's live window) and ``log.jsonl``. Starting a run whose folder holds a checkpoint resumes it
(``fresh=True`` starts over). When the run ends, the EMA generator becomes the native model
``<name>`` (``models list`` shows it, the editor opens it) with its discriminator saved beside it
as ``discriminator.pt``, so ``--from <name>`` can fine-tune it later.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ... import paths
from ...errors import Cancelled, InputError, ModelFormatError
from ...safe_io import atomic_write
from ..distributed import World, any_rank, barrier
from ..model_store import DEFAULT_MODEL, ModelStore, one_line
from ..progress import Cancel, Progress, is_cancelled, no_progress
from .dataset import load_dataset, prepare_dataset
from .discriminator import Discriminator
from .trainer import TrainConfig, Trainer

TRAINED_FORMAT = "stylestudio-train"
DISCRIMINATOR_FILE = "discriminator.pt"
CHECKPOINT_FILE = "checkpoint.pt"
GRID = 4  #: fakes.png is GRID × GRID faces


@dataclass(frozen=True)
class TrainSettings:
    data: Path | None  #: a folder of pictures or a prepared .npz; None: the run's own dataset (resume)
    name: str
    resolution: int | None = None  #: needed for a folder (unless --from gives it)
    from_model: str | None = None
    hsr: str | None = None  #: None: VGG16 for a new run, the checkpoint's when resuming
    hsr_weight: float | None = None  #: None: 1.0 for a new run, the checkpoint's when resuming
    kimg: float | None = None  #: stop after this many thousand images in total (over resumes)
    minutes: float | None = None  #: stop after this many minutes of this invocation
    batch: int = 16
    gamma: float | None = None
    seed: int = 0
    fresh: bool = False
    warm_start: str | None = None  #: a new run starts from this run's checkpoint (baseline, then HSR)
    checkpoint_minutes: float = 5.0
    checkpoint_steps: int | None = None  #: also every N steps (tests)
    latent_dim: int = 256
    channel_max: int = 256
    mapping_layers: int = 4
    align_faces: bool = False  #: prepare a folder as FFHQ-aligned faces (every face found), as photos are
    fakes_seconds: float = 30.0  #: how often the grid of fakes is refreshed (besides each checkpoint)
    precision: str = "fp32"  #: or mixed precision on a GPU: "bf16", "fp16" (see trainer.check_precision)
    on_fakes: Callable[["FakesGrid"], None] | None = field(default=None, compare=False, repr=False)
    #: True once the person wants the run to end now and install the model as it is (*Finish now*)
    finish: Callable[[], bool] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class FakesGrid:
    """The EMA generator's faces for fixed latents at one moment of a run (what ``fakes.png`` shows)."""

    image: np.ndarray  #: uint8 [GRID·R, GRID·R, 3]
    step: int
    kimg: float
    path: Path  #: the fakes.png just written

    def caption(self) -> str:
        return f"step {self.step}, {self.kimg:.3g} kimg"


@dataclass
class TrainOutcome:
    model: str
    steps: int
    kimg: float
    seconds: float
    kimg_per_s: float
    resumed_at_step: int | None
    folder: Path
    notes: list[str] = field(default_factory=list)
    last_losses: dict[str, float] = field(default_factory=dict)
    finished_early: bool = False  #: ended by *Finish now* before its kimg or minutes

    def summary(self) -> str:
        resumed = f", resumed at step {self.resumed_at_step}" if self.resumed_at_step is not None else ""
        early = ", finished early" if self.finished_early else ""
        return (f"model {self.model!r}: {self.steps} steps, {self.kimg:.3g} kimg, {self.kimg_per_s:.3g} kimg/s "
                f"({self.seconds:.0f} s{resumed}{early})")


def run_folder(name: str) -> Path:
    return paths.data_home() / "training" / name


def _load_torch(path: Path, what: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file raises anything from the unpickler
        raise InputError(f"{path}: not a readable {what} ({one_line(exc, 160)})") from None


def save_torch(path: Path, obj: Any) -> None:
    atomic_write(Path(path), lambda f: torch.save(obj, f))


def load_discriminator(model_folder: Path) -> Discriminator | None:
    """The discriminator saved beside a model trained here, or None when the model has none."""
    path = Path(model_folder) / DISCRIMINATOR_FILE
    if not path.is_file():
        return None
    saved = _load_torch(path, "discriminator")
    try:
        D = Discriminator(**saved["config"])
        D.load_state_dict(saved["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFormatError(f"{path}: the discriminator does not fit its settings ({one_line(exc, 160)})") from None
    return D


def fakes_grid(trainer: Trainer, seed: int) -> np.ndarray:
    """GRID × GRID faces of the EMA generator for latents fixed by ``seed`` (the same faces all run long)."""
    G = trainer.G_ema
    z = torch.from_numpy(np.random.default_rng([seed, 0xFACE]).standard_normal((GRID * GRID, G.z_dim))
                         .astype(np.float32)).to(trainer.device)
    with torch.no_grad():
        img = G.generate(z, noise_mode="const")
    arr = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    r = arr.shape[1]
    return arr.reshape(GRID, GRID, r, r, 3).transpose(0, 2, 1, 3, 4).reshape(GRID * r, GRID * r, 3)


def save_fakes(trainer: Trainer, path: Path, seed: int) -> FakesGrid:
    """Render the grid, write it atomically to ``path`` and return it."""
    from PIL import Image

    grid = fakes_grid(trainer, seed)
    atomic_write(path, lambda f: Image.fromarray(grid).save(f, format="PNG"))
    return FakesGrid(grid, trainer.step_count, trainer.images_seen / 1000, Path(path))


def _prepare_data(s: TrainSettings, folder: Path, resolution: int | None, world: World, progress: Progress,
                  cancel: Cancel) -> tuple[np.ndarray, list[str]]:
    own = folder / "dataset.npz"
    notes: list[str] = []
    if s.data is None:
        if not own.is_file():
            raise InputError(f"no dataset for run {s.name!r}: give --data FOLDER")
        return load_dataset(own), notes
    data = Path(s.data)
    if data.is_dir():
        if resolution is None:
            raise InputError("--resolution is needed to prepare a folder of pictures")
        if world.is_main:
            prepared = prepare_dataset(data, own, resolution, align_faces=s.align_faces, progress=progress,
                                       cancel=cancel)
            notes.append(prepared.summary())
            notes += [f"skipped: {line}" for line in prepared.skipped]
            notes += [f"duplicate: {line}" for line in prepared.duplicates]
        barrier(world)
        return load_dataset(own), notes
    if not data.exists():
        raise InputError(f"{data}: no such file or folder")
    images = load_dataset(data)
    if world.is_main and data.resolve() != own.resolve():  # the run keeps its data, so resuming needs no --data
        atomic_write(own, lambda f: f.write(data.read_bytes()))
    barrier(world)
    return images, notes


def _start(s: TrainSettings, store: ModelStore, folder: Path, device: torch.device, world: World,
           progress: Progress, cancel: Cancel) -> tuple[Trainer, list[str], int | None]:
    ckpt = folder / CHECKPOINT_FILE
    warm = None
    if s.warm_start and not (ckpt.is_file() and not s.fresh):
        warm = run_folder(s.warm_start) / CHECKPOINT_FILE
        if not warm.is_file():
            raise InputError(f"run {s.warm_start!r} has no checkpoint to start from ({warm})")
    if warm is not None or (ckpt.is_file() and not s.fresh):
        source = warm or ckpt
        state = _load_torch(source, "training checkpoint")
        if not isinstance(state, dict) or state.get("format") != "stylestudio-training-1":
            raise InputError(f"{source}: not a StyleStudio training checkpoint")
        if warm is not None and s.data is None:
            s = replace(s, data=run_folder(s.warm_start) / "dataset.npz")
        images, notes = _prepare_data(s, folder, int(state["config"]["resolution"]), world, progress, cancel)
        trainer = Trainer.from_state(state, images, device, world, s.hsr, s.hsr_weight, s.precision,
                                     seed=s.seed if warm is not None else None)  # resuming keeps its own
        where = f"run {s.warm_start!r}" if warm is not None else "its checkpoint"
        note = f"resumed from {where} at step {trainer.step_count} ({trainer.images_seen / 1000:.3g} kimg)"
        if state["config"].get("hsr") != trainer.config.hsr:
            note += f"; HSR {state['config'].get('hsr')} → {trainer.config.hsr}"
        return trainer, notes + [note], trainer.step_count

    G = D = None
    notes: list[str] = []
    resolution = s.resolution
    if s.from_model:
        default_unprovisioned = s.from_model == DEFAULT_MODEL and not store.has(DEFAULT_MODEL)
        info = None if default_unprovisioned else store.info(s.from_model)
        arch = "mobilestylegan" if info is None else info.arch
        if info is None or arch != "stylegan2":
            raise InputError(f"model {s.from_model!r} is a {arch} generator, which has no discriminator to "
                             f"fine-tune with (the default MobileStyleGAN is a distilled student); --from takes a "
                             f"StyleGAN2 model")
        G = store.load(s.from_model)
        if resolution is not None and resolution != G.resolution:
            raise InputError(f"model {s.from_model!r} makes {G.resolution} px images, not {resolution} px")
        resolution = G.resolution
        D = load_discriminator(info.path)
        if D is None:
            why = ("its NVlabs snapshot had none the trainer can use, or it was imported before discriminators "
                   "were converted: import the .pkl again" if info.source.get("format") == "nvlabs-pkl" else
                   "imported checkpoints other than NVlabs snapshots keep only the generator")
            notes.append(f"model {s.from_model!r} carries no discriminator ({why}): fine-tuning starts with a new one")
    images, data_notes = _prepare_data(s, folder, resolution, world, progress, cancel)
    notes = data_notes + notes
    resolution = resolution or int(images.shape[1])
    if G is not None:
        cfg = G.config
        config = TrainConfig(resolution, batch=s.batch, z_dim=cfg["z_dim"], w_dim=cfg["w_dim"],
                             mapping_layers=cfg["num_mapping_layers"], channel_base=cfg["channel_base"],
                             channel_max=cfg["channel_max"], r1_gamma=s.gamma, hsr=s.hsr or "vgg16", hsr_weight=1.0 if s.hsr_weight is None else s.hsr_weight,
                             seed=s.seed)
    else:
        config = TrainConfig(resolution, batch=s.batch, z_dim=s.latent_dim, w_dim=s.latent_dim,
                             mapping_layers=s.mapping_layers, channel_base=max(resolution, 32 * s.channel_max),
                             channel_max=s.channel_max, r1_gamma=s.gamma, hsr=s.hsr or "vgg16", hsr_weight=1.0 if s.hsr_weight is None else s.hsr_weight,
                             seed=s.seed)
    return Trainer(config, images, device, world, G=G, D=D, precision=s.precision), notes, None


def train(s: TrainSettings, store: ModelStore, device: torch.device, world: World,
          progress: Progress = no_progress, cancel: Cancel = None) -> TrainOutcome:
    """Train (or resume) run ``s.name`` until ``s.kimg`` or ``s.minutes``; install the model."""
    if s.kimg is None and s.minutes is None:
        raise InputError("say how long to train: --kimg N (thousands of images) or --minutes T")
    store.check_name_free(s.name)
    folder = run_folder(s.name)
    if store.has(s.name) and not (folder / CHECKPOINT_FILE).is_file() and \
            store.info(s.name).source.get("format") != TRAINED_FORMAT:
        raise InputError(f"a model named {s.name!r} exists and was not trained here; choose another --name")
    if world.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        if s.fresh or not (folder / CHECKPOINT_FILE).is_file():  # a new run: no losses of an earlier one
            (folder / "log.jsonl").unlink(missing_ok=True)
    barrier(world)
    trainer, notes, resumed = _start(s, store, folder, device, world, progress, cancel)
    for note in notes:
        progress(note, -1)
    target = s.kimg * 1000 if s.kimg is not None else None
    t0 = last_ckpt = last_fakes = time.monotonic()
    start_images = trainer.images_seen
    losses: dict[str, float] = {}
    log_lines: list[str] = []

    def fakes() -> None:
        """Only the main process renders: every rank's EMA generator is the same."""
        nonlocal last_fakes
        if world.is_main:
            grid = save_fakes(trainer, folder / "fakes.png", trainer.config.seed)
            if s.on_fakes is not None:
                s.on_fakes(grid)
        last_fakes = time.monotonic()

    def checkpoint() -> None:
        if world.is_main:
            save_torch(folder / CHECKPOINT_FILE, trainer.state_dict())
            fakes()
            if log_lines:
                with open(folder / "log.jsonl", "a") as f:
                    f.write("".join(log_lines))
                log_lines.clear()
        barrier(world)

    first_step = trainer.step_count
    early = False

    def _loop() -> bool:
        nonlocal last_ckpt, losses, early
        stop = False
        if world.is_main:
            progress(f"faces of the model as it learns: {folder / 'fakes.png'} (every {s.fakes_seconds:g} s)", -1)
        fakes()
        while True:
            elapsed = time.monotonic() - t0
            done = (target is not None and trainer.images_seen >= target) or \
                   (s.minutes is not None and elapsed >= s.minutes * 60)
            stop = is_cancelled(cancel)
            early = not done and trainer.step_count > first_step and s.finish is not None and s.finish()
            if any_rank(done or stop or early, world):
                break
            losses = trainer.step()
            log_lines.append(json.dumps({"step": trainer.step_count, "kimg": trainer.images_seen / 1000, **losses}) + "\n")
            rate = (trainer.images_seen - start_images) / 1000 / max(time.monotonic() - t0, 1e-9)
            ends = []  # (fraction done, seconds left) of each limit given: whichever comes first ends the run
            if target is not None:
                ends.append((trainer.images_seen / target, (target - trainer.images_seen) / 1000 / max(rate, 1e-9)))
            if s.minutes is not None:
                ends.append((elapsed / (s.minutes * 60), s.minutes * 60 - elapsed))
            frac, eta = min(ends, key=lambda e: e[1])
            if world.is_main:
                shown = " ".join(f"{k}={v:.3g}" for k, v in losses.items())
                progress(f"step {trainer.step_count}, {trainer.images_seen / 1000:.3g} kimg, {rate:.3g} kimg/s, "
                         f"ETA {eta / 60:.1f} min: {shown}", min(1.0, frac))
            due = (s.checkpoint_steps is not None and trainer.step_count % s.checkpoint_steps == 0) or \
                  time.monotonic() - last_ckpt >= s.checkpoint_minutes * 60
            if any_rank(due, world):
                checkpoint()
                last_ckpt = time.monotonic()
            elif time.monotonic() - last_fakes >= s.fakes_seconds:
                fakes()
        return stop

    try:
        stop = _loop()
    except Cancelled:
        checkpoint()
        raise
    checkpoint()
    if stop:
        raise Cancelled(f"training cancelled at step {trainer.step_count}; run it again to resume")
    seconds = time.monotonic() - t0
    if world.is_main:
        source = {"format": TRAINED_FORMAT, "run": s.name, "kimg": trainer.images_seen / 1000,
                  "steps": trainer.step_count, "hsr": trainer.config.hsr, "from": s.from_model}
        if early:
            source["finished_early"] = True
        info = store.add(trainer.G_ema.cpu(), s.name, source)
        save_torch(info.path / DISCRIMINATOR_FILE, {"config": trainer.D.config,
                                                     "state": {k: v.cpu() for k, v in trainer.D.state_dict().items()}})
        trainer.G_ema.to(trainer.device)
    barrier(world)
    return TrainOutcome(s.name, trainer.step_count, trainer.images_seen / 1000, seconds,
                        (trainer.images_seen - start_images) / 1000 / max(seconds, 1e-9), resumed, folder, notes,
                        losses, finished_early=early)
