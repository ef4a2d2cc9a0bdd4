"""Metric tasks: PPL, ALS and FD-VGG of any installed model (see :mod:`..metrics`).

Under ``torchrun`` every process runs the same request on its share of the samples and every
rank gets the merged result (the CLI prints it on rank 0 only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..progress import Cancel, Progress, checking
from . import task


@dataclass(frozen=True)
class MeasurePPL:
    """Perceptual path length (``ppl2_wend`` with the defaults)."""

    model: str
    samples: int = 50_000
    seed: int = 0
    space: str = "w"
    sampling: str = "end"
    crop: bool = False
    epsilon: float = 1e-4
    batch: int = 8
    #: True once the person wants the value of the samples measured so far (*Finish now*)
    finish: Callable[[], bool] | None = field(default=None, compare=False, repr=False)
    lane: ClassVar[str] = "long"

    def title(self) -> str:
        return f"PPL of {self.model} ({self.samples} samples)"


@dataclass(frozen=True)
class MeasureALS:
    """Attribute linearity along the model's attribute sliders (built with ``directions build``)."""

    model: str
    samples: int = 100
    seed: int = 0
    psi: float = 0.7
    steps: int = 11
    span: float = 2.0
    library: str = "attributes"
    directions: tuple[str, ...] = ()  #: empty: every direction the predictor measures
    lane: ClassVar[str] = "long"

    def title(self) -> str:
        return f"ALS of {self.model} ({self.samples} faces)"


@dataclass(frozen=True)
class MeasureFD:
    """FD-VGG against a prepared dataset file (or a folder of pictures, prepared first)."""

    model: str
    data: Path
    samples: int = 10_000
    seed: int = 0
    psi: float = 1.0
    size: int = 224
    batch: int = 8
    resamples: int = 50  #: bootstrap resamples of the interval (a 512×512 matrix root each)
    lane: ClassVar[str] = "long"

    def title(self) -> str:
        return f"FD-VGG of {self.model} against {Path(self.data).name}"


@task(MeasurePPL)
def measure_ppl(session: Any, req: MeasurePPL, progress: Progress, cancel: Cancel) -> Any:
    from ..metrics.ppl import perceptual_path_length

    gen = session.model(req.model, progress=checking(progress, cancel)).generator
    return perceptual_path_length(gen, req.samples, seed=req.seed, space=req.space, sampling=req.sampling,
                                  epsilon=req.epsilon, crop=req.crop, batch=req.batch, progress=progress,
                                  cancel=cancel, finish=req.finish)


@task(MeasureALS)
def measure_als(session: Any, req: MeasureALS, progress: Progress, cancel: Cancel) -> Any:
    from ...errors import InputError
    from ..attributes.predictor import ATTRIBUTES, AttributePredictor
    from ..directions.labels import preview_stop, render_small
    from ..metrics.als import EditDirection, attribute_linearity

    m = session.model(req.model, progress=checking(progress, cancel))
    gen = m.generator
    lib = m.resources.get("directions", req.library)
    missing = [n for n in req.directions if n not in lib.names()]
    if missing:
        raise InputError(f"model {req.model!r}: the {req.library!r} library has no direction "
                         f"{', '.join(map(repr, missing))} (it has: {', '.join(lib.names()) or 'none'})")
    unmeasured = [n for n in req.directions if n not in ATTRIBUTES]
    if unmeasured:
        raise InputError(f"{', '.join(map(repr, unmeasured))}: not an attribute the predictors measure, so ALS cannot "
                         f"score it (they measure: {', '.join(ATTRIBUTES)})")
    names = [n for n in (req.directions or lib.names()) if n in ATTRIBUTES]
    if not names:
        raise InputError(f"model {req.model!r}: no measurable attribute directions in the {req.library!r} library "
                         f"(build them with `stylestudio directions build --model {req.model}`)")
    directions = [EditDirection(n, lib[n].vector, tuple(lib[n].layers), float(lib[n].unit)) for n in names]
    predictor = AttributePredictor(progress=checking(progress, cancel))
    stop = preview_stop(gen)
    return attribute_linearity(gen, directions, predictor.measure, req.samples, seed=req.seed, psi=req.psi,
                               steps=req.steps, span=req.span, render=lambda ws: render_small(gen, ws, stop),
                               progress=progress, cancel=cancel)


@task(MeasureFD)
def measure_fd(session: Any, req: MeasureFD, progress: Progress, cancel: Cancel) -> Any:
    from ... import paths
    from ..metrics.fd import fd_vgg
    from ..training.dataset import dataset_for

    gen = session.model(req.model, progress=checking(progress, cancel)).generator
    cache = paths.cache_dir() / f"fd-{Path(req.data).name}-{gen.resolution}.npz"
    images, _ = dataset_for(Path(req.data), gen.resolution, cache, progress, cancel)
    return fd_vgg(gen, images, req.samples, seed=req.seed, psi=req.psi, size=req.size, batch=req.batch,
                  resamples=req.resamples, progress=progress, cancel=cancel)
