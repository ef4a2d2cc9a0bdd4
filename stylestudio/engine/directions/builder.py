"""Building the attribute direction library for any loaded model (CLI, GUI and the shipped one).

label faces → InterFaceGAN fit, layers and units → SC²GAN refit of correlated directions →
what each slider does to the others, measured on a few of the labelled faces (the editor's
readout under each slider) → ``<data>/directions/<model>/attributes.ssdir`` (which the renderer
prefers over a shipped one).
Progress is reported as (message, fraction); ``cancelled()`` is polled between faces.
"""
from __future__ import annotations

from pathlib import Path

from ... import paths
from .interfacegan import build_library
from .labels import CancelCheck, LabelSet, Progress, label_faces
from .library import DirectionLibrary

ATTRIBUTE_LIBRARY = "attributes"


def user_library_path(model: str, name: str = ATTRIBUTE_LIBRARY) -> Path:
    d = paths.data_home() / "directions" / model
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.ssdir"


def build_attribute_library(generator, model: str, samples: int = 3000, *, seed: int = 0, psi: float = 0.8,
                            refit: bool = True, effect_faces: int = 12, labels: LabelSet | None = None,
                            predictor=None, output: Path | None = None, progress: Progress | None = None,
                            cancelled: CancelCheck | None = None) -> tuple[DirectionLibrary, Path]:
    """Label ``samples`` faces (unless ``labels`` are given), fit, refit, save; returns (library, path)."""
    from ..attributes import AttributePredictor

    predictor = predictor or AttributePredictor(progress=progress)
    if labels is None:
        labels = label_faces(generator, predictor, samples, seed=seed, psi=psi, progress=progress,
                             cancelled=cancelled, start_fraction=0.0, end_fraction=0.7)
    fitted_end = 0.85 if effect_faces else 1.0
    lib = build_library(generator, model, labels, predictor, seed=seed, progress=progress, cancelled=cancelled,
                        start_fraction=0.7, end_fraction=0.8 if refit else fitted_end)
    if refit:
        from .sc2gan import refit_library

        lib, _ = refit_library(generator, lib, labels, predictor, seed=seed, progress=progress,
                               cancelled=cancelled, start_fraction=0.8, end_fraction=fitted_end)
    if effect_faces:
        from .drift import library_effects, render_measure
        from .labels import preview_stop

        measure = render_measure(generator, predictor, preview_stop(generator, 256), cancelled)
        library_effects(measure, labels.w[:effect_faces], lib, generator.num_ws, progress=progress,
                        start_fraction=fitted_end, end_fraction=1.0)
    path = Path(output) if output else user_library_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    lib.save(path)
    if progress:
        progress(f"saved {len(lib.names())} directions to {path}", 1.0)
    return lib, path
