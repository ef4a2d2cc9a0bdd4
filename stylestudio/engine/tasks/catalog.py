"""Region catalog tasks: build one (long), read one, a region's map on a face, a thumbnail."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..document import EditDocument, Source
from ..progress import Cancel, Progress, checking
from ..regions.catalog import DEFAULT_K, DEFAULT_NAME
from . import task


def catalog_info(session: Any, model: str, name: str = DEFAULT_NAME) -> dict[str, Any] | None:
    """The catalog's regions for a list (plain data), or None when the model has none yet."""
    from ...errors import InputError

    m = session.model(model)
    if m.resources.find_file("catalogs", f"{name}.json") is None:
        return None
    try:
        cat = m.resources.get("catalog", name)
    except InputError:
        return None
    return {"model": model, "k": cat.k, "names": {n: tuple(c) for n, c in cat.names.items()},
            "clusters": [cat.cluster_name(i) for i in range(cat.k)],
            "area": [float(a) for a in cat.area], "queries": {n: cat.region_query(n) for n in cat.queries}}


@dataclass(frozen=True)
class BuildCatalog:
    """Sample faces of ``model``, cluster a layer, measure every style channel; save in the user
    data folder and make it the session's catalog ``name``."""

    model: str
    k: int = DEFAULT_K
    samples: int = 200
    name: str = DEFAULT_NAME
    layer: str | None = None
    fit_samples: int | None = None
    psi: float = 0.7
    seed: int = 0
    batch: int = 4
    effect_samples: int = 16
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        return f"Build region catalog for {self.model}"

    def describe_result(self, result: "BuiltCatalog") -> str:
        return f"{result.catalog.k} clusters → {result.path.name}"


@dataclass(frozen=True)
class BuiltCatalog:
    path: Path
    catalog: Any  #: the :class:`~stylestudio.engine.regions.catalog.Catalog`
    info: dict[str, Any]  #: :func:`catalog_info` of it


@task(BuildCatalog)
def build(session: Any, req: BuildCatalog, progress: Progress, cancel: Cancel) -> BuiltCatalog:
    from ..regions.builder import build_catalog
    from ..regions.catalog import user_catalog_path

    target = user_catalog_path(req.model, req.name)  # checks the name before the long job
    m = session.model(req.model, progress=checking(progress, cancel))
    cat = build_catalog(m.generator, req.model, k=req.k, layer=req.layer, samples=req.samples,
                        fit_samples=req.fit_samples, psi=req.psi, seed=req.seed, batch=req.batch,
                        effect_samples=max(0, req.effect_samples), progress=progress, cancel=cancel)
    path = cat.save(target)
    session.install(req.model, "catalog", req.name, cat)
    return BuiltCatalog(path, cat, catalog_info(session, req.model, req.name) or {})


@dataclass(frozen=True)
class CatalogInfo:
    """:func:`catalog_info` of a model (None: it has no catalog yet)."""

    model: str
    name: str = DEFAULT_NAME
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return "Region catalog"


@task(CatalogInfo)
def info(session: Any, req: CatalogInfo, progress: Progress, cancel: Cancel) -> dict[str, Any] | None:
    return catalog_info(session, req.model, req.name)


@dataclass(frozen=True)
class ReferenceThumbnail:
    """A small picture (HxWx3 uint8) of a face of any source kind."""

    model: str
    source: Source
    size: int
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return "Reference thumbnail"


@task(ReferenceThumbnail)
def thumbnail(session: Any, req: ReferenceThumbnail, progress: Progress, cancel: Cancel) -> np.ndarray:
    import torch

    from ..render import to_uint8

    r = session.renderer(req.model, "before")
    with torch.no_grad():
        img = r.generator.synthesize(r.styles_of(r.latent(req.source))).image
        img = torch.nn.functional.interpolate(img.float(), size=(req.size, req.size), mode="bilinear",
                                              antialias=True, align_corners=False)
    return to_uint8(img)


@dataclass(frozen=True)
class RegionMap:
    """Where ``clusters`` lie on the document's own face (after its other edits): a float mask."""

    doc: EditDocument
    clusters: tuple[int, ...]
    size: int
    name: str = DEFAULT_NAME
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return "Region map"


@task(RegionMap)
def region_map(session: Any, req: RegionMap, progress: Progress, cancel: Cancel) -> np.ndarray:
    from ..edits.transfer import TransferEdit

    doc = req.doc
    r = session.renderer(doc.model, "before")
    cat = r.resources.get("catalog", req.name)
    others = dataclasses.replace(doc, edits=tuple(e for e in doc.edits if not isinstance(e, TransferEdit)))
    labels = cat.cluster_map(r.generator, r.document_styles(others), req.size)[0].cpu().numpy()
    return np.isin(labels, req.clusters).astype(np.float32)
