"""Direction tasks: build a model's attribute library (long), a slider from example faces, install the slider
libraries a project keeps (engine/edits/kept.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..progress import Cancel, Progress, checking
from . import task


@dataclass(frozen=True)
class BuildDirections:
    """Label ``samples`` generated faces and fit the attribute directions: ``(library, path)``."""

    model: str
    samples: int = 3000
    seed: int = 0
    psi: float = 0.8
    refit: bool = True
    output: Path | None = None  #: None: the user data folder, which the editor uses
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        return f"Build attribute sliders for {self.model}"

    def describe_result(self, result: tuple[Any, Path]) -> str:
        return f"{len(result[0].names())} directions → {result[1].name}"


@task(BuildDirections)
def build_directions(session: Any, req: BuildDirections, progress: Progress, cancel: Cancel) -> tuple[Any, Path]:
    import torch

    from ..directions.builder import build_attribute_library

    m = session.model(req.model, progress=checking(progress, cancel))
    with torch.no_grad():
        lib, path = build_attribute_library(m.generator, req.model, req.samples, seed=req.seed, psi=req.psi,
                                            refit=req.refit, output=req.output, progress=progress,
                                            cancelled=cancel)
    if req.output is None:
        session.install(req.model, "directions", "attributes", lib)
    return lib, path


@dataclass(frozen=True)
class SliderFromExamples:
    """W of each seed → a direction (named attributes in ``keep`` projected out), saved into the
    user's ``custom`` library and installed in the session. The result is the library path."""

    model: str
    name: str
    positives: tuple[int, ...]
    negatives: tuple[int, ...]
    psi: float = 0.7
    keep: tuple[str, ...] = ()
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        return f"Fit slider “{self.name}”"

    def describe_result(self, result: str) -> str:
        return f"saved in {Path(result).name}"


@task(SliderFromExamples)
def slider_from_examples(session: Any, req: SliderFromExamples, progress: Progress, cancel: Cancel) -> str:
    import numpy as np
    import torch

    from ...errors import InputError
    from ..directions.examples import direction_from_examples, save_custom_direction
    from ..directions.library import DirectionLibrary
    from ..document import seed_to_z

    progress(f"Fitting “{req.name}” from {len(req.positives)} + {len(req.negatives)} faces…", -1)
    m = session.model(req.model, progress=checking(progress, cancel))
    gen = m.generator

    @torch.no_grad()
    def latents(seeds: tuple[int, ...]) -> list[torch.Tensor]:
        return [gen.mapping(seed_to_z(s, gen.z_dim).to(gen.device), req.psi)[0].cpu() for s in seeds]

    normals: list[np.ndarray] = []
    if req.keep:
        try:
            lib = m.resources.get("directions", "attributes")
            normals = [lib[k].vector for k in req.keep if k in lib]
        except InputError:
            normals = []
    direction = direction_from_examples(gen, latents(req.positives), latents(req.negatives), req.name, keep=normals)
    path = save_custom_direction(req.model, direction)
    session.install(req.model, "directions", "custom", DirectionLibrary.load(path))
    return str(path)


@dataclass(frozen=True)
class DescribeSliders:
    """What the Attributes panel lists for ``model``: per library (``attributes``, the user's
    ``custom``), one dict per direction: name, label, tooltip, unit, unit_change (None: unitless),
    and what the slider does to the other attributes (``drift.slider_effects_summary``).
    A quick look-up in the render session, which holds the libraries the sliders edit with."""

    model: str
    libraries: tuple[str, ...] = ("attributes", "custom")
    #: a library the model lacks lists as empty (False: the look-up fails with its reason)
    missing_ok: bool = True
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return f"Attributes of {self.model}"


@task(DescribeSliders)
def describe_sliders(session: Any, req: DescribeSliders, progress: Progress, cancel: Cancel) -> dict[str, list]:
    from ...errors import InputError
    from ..directions.drift import slider_effects_summary

    res = session.model(req.model, progress=checking(progress, cancel)).resources
    out: dict[str, list[dict[str, Any]]] = {}
    for library in req.libraries:
        try:
            lib = res.get("directions", library)
        except InputError:  # no such library for this model: an empty list, not an error
            if not req.missing_ok:
                raise
            out[library] = []
            continue
        items = []
        for d in lib.directions.values():
            unit, change = d.meta.get("attribute_unit", ""), d.meta.get("unit_change")
            tip = d.meta.get("description") or d.label
            if "eigenvalue" in d.meta:
                tip = f"{d.label}: closed-form semantic factor (SeFa), eigenvalue {d.meta['eigenvalue']:.3g}"
            elif change is not None:
                tip = f"{d.label}: one unit ≈ {change:.3g} {unit}" + (f" (+ {d.meta['positive']})"
                                                                       if d.meta.get("positive") else "")
            elif d.meta.get("method") == "examples":
                tip = (f"{d.label}: your slider from {d.meta.get('positives')} + {d.meta.get('negatives')} "
                       "example faces; ±2 walks from one group to the other")
            items.append({"name": d.name, "label": d.label, "tooltip": tip, "unit": unit,
                          "unit_change": float(change) if change is not None else None,
                          "former": lib.former_names(d.name),
                          **slider_effects_summary(lib, d.name)})
        out[library] = items
    return out


@dataclass(frozen=True, eq=False)
class InstallProjectLibraries:
    """Install the slider libraries a project keeps copies of and this computer lacks
    (engine/edits/kept.py): the result is ``["directions mine", …]``, one per library installed."""

    doc: Any  #: the :class:`~stylestudio.engine.document.EditDocument`
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return "Install the project's sliders"

    def describe_result(self, result: list[str]) -> str:
        return f"installed {', '.join(result)}" if result else "nothing to install"


@task(InstallProjectLibraries)
def install_project_libraries(session: Any, req: InstallProjectLibraries, progress: Progress,
                              cancel: Cancel) -> list[str]:
    from ..edits.kept import install_missing

    m = session.model(req.doc.model, progress=checking(progress, cancel))
    done = install_missing(req.doc, m.resources)
    for kind, name, lib in done:
        session.install(req.doc.model, kind, name, lib)
    return [f"{'text paths' if kind == 'textpaths' else 'directions'} {name}" for kind, name, _ in done]
