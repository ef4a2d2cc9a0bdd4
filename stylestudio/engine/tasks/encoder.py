"""Training the photo encoder of a model (:mod:`..inversion.net_encoder`) on its own generated faces."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..progress import Cancel, Progress, checking, scaled
from . import task


@dataclass(frozen=True)
class TrainEncoder:
    """Render ``faces`` faces of ``model`` (with their codes), read them with the frozen VGG and fit
    the encoder head: ``(encoder, path)``. Renders are kept in ``cache`` so a stopped run resumes
    and a refit (other ``epochs``, ``minutes``) renders nothing."""

    model: str
    faces: int = 2000
    epochs: int = 40
    minutes: float | None = None  #: wall-clock limit for the fit
    render_minutes: float | None = None  #: stop rendering new faces after this long; train on those made
    seed: int = 0
    from_ridge: bool = True  #: start the linear path from the model's ridge encoder, when it has one
    cache: Path | None = None  #: None: the user cache folder (``encoder-faces/<model>``, ~0.6 MB a face)
    output: Path | None = None  #: None: ``<data>/encoder/<model>/default.pt``, which the inversion uses
    lane: ClassVar[str] = "long"

    def title(self) -> str:
        return f"Train the photo encoder of {self.model}"

    def describe_result(self, result: tuple[Any, Path]) -> str:
        t = result[0].meta.get("training", {})
        return f"{t.get('faces', '?')} faces, held-out loss {t.get('best_held_out_loss', '?')} → {result[1].name}"


@task(TrainEncoder)
def train_encoder(session: Any, req: TrainEncoder, progress: Progress, cancel: Cancel) -> tuple[Any, Path]:
    import time

    import torch

    from ... import paths
    from ...errors import InputError
    from ..inversion.encoder import FeatureEncoder
    from ..inversion.encoder_training import MAX_FACES, NetTraining, fit_net_encoder, prepare_faces
    from ..inversion.net_encoder import NetConfig
    from ..perceptual import load_lpips

    if not 1 <= req.faces <= MAX_FACES:
        raise InputError(f"faces must be 1 … {MAX_FACES}, not {req.faces}")
    m = session.model(req.model, progress=checking(progress, cancel))
    gen = m.generator
    cfg = NetConfig.for_generator(gen)
    ridge = None
    if req.from_ridge and m.resources.find_file("encoder", "default.json") is not None:
        ridge = m.resources.get("encoder", "default")
        if not isinstance(ridge, FeatureEncoder) or ridge.spec != cfg.spec or ridge.coef.shape[0] != cfg.components:
            ridge = None
    cache = req.cache or Path(paths.cache_dir()) / "encoder-faces" / req.model
    output = req.output or Path(paths.data_home()) / "encoder" / req.model / "default.pt"
    lpips = load_lpips(gen.device, size=None)
    started = time.time()
    with torch.no_grad():
        inputs, wplus, groups = prepare_faces(
            gen, lpips, cfg, cache, req.faces, req.seed, progress=scaled(progress, 0.0, 0.8), cancel=cancel,
            render_seconds=None if req.render_minutes is None else 60 * req.render_minutes)
    prepared = time.time() - started
    settings = NetTraining(epochs=req.epochs, max_seconds=None if req.minutes is None else 60 * req.minutes,
                           seed=req.seed)
    enc = fit_net_encoder(gen, req.model, inputs, wplus, groups, cfg, settings, ridge,
                          progress=scaled(progress, 0.8, 1.0), cancel=cancel)
    enc.meta["training"].update({"seed": req.seed, "from_ridge": ridge is not None, "threads": torch.get_num_threads(),
                                 "seconds": {"faces": round(prepared, 1), "fit": enc.meta["training"]["history"][-1]["seconds"]}})
    enc.save(output)
    if req.output is None:
        session.install(req.model, "net-encoder", "default", enc)
    return enc, output
