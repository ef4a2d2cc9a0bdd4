"""The training task: train (or resume) a StyleGAN2 on the user's pictures (see :mod:`..training.run`).

The same request runs in the GUI's job thread and, unchanged, in every process of a
``torchrun`` launch (the CLI builds it there); ranks split the batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..progress import Cancel, Progress
from . import task


@dataclass(frozen=True)
class TrainModel:
    """Train model ``name`` from ``data`` (a folder of pictures or a prepared .npz).

    ``on_fakes`` (not part of the request's identity) receives each refreshed grid of fakes
    (:class:`~stylestudio.engine.training.run.FakesGrid`) in the task's thread.
    """

    name: str
    data: Path | None
    resolution: int | None = None
    from_model: str | None = None
    hsr: str | None = None  #: None: VGG16 for a new run, the checkpoint's when resuming
    hsr_weight: float | None = None
    kimg: float | None = None
    minutes: float | None = None
    batch: int = 16
    gamma: float | None = None
    seed: int = 0
    fresh: bool = False
    warm_start: str | None = None  #: start from this run's checkpoint (baseline, then HSR)
    checkpoint_minutes: float = 5.0
    checkpoint_steps: int | None = None
    latent_dim: int = 256
    channel_max: int = 256
    mapping_layers: int = 4
    align_faces: bool = False  #: prepare a folder as FFHQ-aligned faces (every face found)
    fakes_seconds: float = 30.0
    precision: str = "fp32"  #: "bf16"/"fp16": mixed precision on a GPU
    on_fakes: Callable[[Any], None] | None = field(default=None, compare=False, repr=False)
    #: True once the person wants it to end now and install the model as it is (*Finish now*)
    finish: Callable[[], bool] | None = field(default=None, compare=False, repr=False)
    lane: ClassVar[str] = "long"

    def title(self) -> str:
        return f"Train {self.name}" + (f" (from {self.from_model})" if self.from_model else "")

    def describe_result(self, result: Any) -> str:
        return result.summary()


@task(TrainModel)
def train_model(session: Any, req: TrainModel, progress: Progress, cancel: Cancel) -> Any:
    from dataclasses import fields

    from ..distributed import current_world
    from ..training.run import TrainSettings, train

    world = current_world(session.device)
    settings = TrainSettings(**{f.name: getattr(req, f.name) for f in fields(req)})  # no deep copy of on_fakes
    return train(settings, session.store, session.device, world, progress, cancel)
