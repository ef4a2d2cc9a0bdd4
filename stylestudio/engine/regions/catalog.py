"""Region catalogs: the semantic clusters of a generator and how each style channel acts on them.

After Collins et al., "Editing in Style" (CVPR 2020). A catalog is built once per model:

1. sample faces and take the activations of one synthesis layer (the *cluster layer*);
2. spherical k-means over their per-pixel channel vectors (rows L2-normalised, centroids kept on
   the unit sphere) gives K clusters that turn out to be semantic parts (eyes, mouth, hair, …);
3. for every style layer, the *contribution matrix* ``M[k, c]``: the share of style channel
   ``c``'s (standardised, squared) input activation that falls inside cluster ``k``. Columns sum
   to one over clusters, so ``1 − M[k, c]`` is the channel's out-of-region share — exactly what
   the sequential query accumulates.

Cluster maps for any face come from the same cluster layer (cosine similarity to the centroids,
upsampled smoothly to any resolution). Catalogs are stored as a JSON description and an ``.npz``
of arrays (no pickle), per model, in the user data folder or shipped under ``resources/``.

This module holds the catalog's data, its files and where they are found; building one is
:mod:`.builder` (with :mod:`.kmeans`, :mod:`.taps`), cluster maps :mod:`.cluster_maps`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ... import paths
from ...errors import InputError, ModelFormatError
from ..generator import Generator
from ..resources import Resources, register_resource_loader
from .cluster_maps import cluster_probs, cluster_scores
from .taps import stop_for

CATALOG_FORMAT = "stylestudio-catalog"
CATALOG_VERSION = 2  #: 2 adds effect matrices and per-region query settings (1 still loads)
DEFAULT_K = 14
DEFAULT_NAME = "default"


@dataclass
class Catalog:
    """Clusters of one generator plus the contribution matrix of every style layer."""

    model: str
    layer: str  #: the tap clustered
    centroids: np.ndarray  #: [K, C] unit rows
    style_layers: tuple[str, ...]  #: in layout order
    contributions: dict[str, np.ndarray]  #: style layer → M [K, channels]; columns sum to 1
    mean: dict[str, np.ndarray]  #: style layer → input-activation channel mean [channels]
    std: dict[str, np.ndarray]  #: style layer → input-activation channel std [channels]
    input_taps: dict[str, str | None]  #: style layer → tap its M was measured on
    area: np.ndarray  #: [K] mean share of the picture each cluster covers
    names: dict[str, tuple[int, ...]] = field(default_factory=dict)  #: region name → clusters
    meta: dict[str, Any] = field(default_factory=dict)  #: samples, psi, seed, time, …
    #: style layer → pixel-effect matrix E [K, channels] (see regions.effects); may be empty
    effects: dict[str, np.ndarray] = field(default_factory=dict)
    #: region name → query settings measured to be the most local for it (QueryParams fields)
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per-use caches (queries, cluster maps); never saved
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    # -- regions ----------------------------------------------------------------------------
    def cluster_name(self, i: int) -> str:
        """The region names containing exactly cluster ``i``, else ``c<i>``."""
        for name, members in self.names.items():
            if tuple(members) == (i,):
                return name
        return f"c{i}"

    def region_names(self) -> list[str]:
        return list(self.names)

    def resolve(self, region: str | Iterable[str]) -> tuple[int, ...]:
        """Region spec(s) → sorted cluster indices. Accepts names, ``c3``/``3`` and ``a+b`` unions."""
        specs = [region] if isinstance(region, str) else list(region)
        out: set[int] = set()
        for spec in specs:
            for part in str(spec).split("+"):
                part = part.strip().lower()
                if not part:
                    continue
                if part in self.names:
                    out.update(self.names[part])
                    continue
                idx = part[1:] if part.startswith("c") else part
                if idx.isdigit() and int(idx) < self.k:
                    out.add(int(idx))
                    continue
                known = ", ".join(self.names) or "none"
                raise InputError(
                    f"unknown region {part!r}: named regions are {known}; clusters are c0…c{self.k - 1}"
                )
        if not out:
            raise InputError("no region given")
        return tuple(sorted(out))

    def with_name(self, name: str, clusters: Iterable[int]) -> "Catalog":
        """A copy with ``name`` (re)defined as the union of ``clusters`` (empty: name removed)."""
        name = name.strip().lower()
        if not name or "+" in name or (name[1:].isdigit() and name[0] == "c") or name.isdigit():
            raise InputError(f"{name!r} cannot be a region name (reserved for clusters or unions)")
        members = tuple(sorted({int(c) for c in clusters}))
        if any(not 0 <= c < self.k for c in members):
            raise InputError(f"clusters must be in 0…{self.k - 1}")
        names = dict(self.names)
        if members:
            names[name] = members
        else:
            names.pop(name, None)
        queries = {n: q for n, q in self.queries.items() if n in names and tuple(names[n]) == tuple(self.names.get(n, ()))}
        return dataclasses.replace(self, names=names, meta=dict(self.meta), queries=queries, cache={})

    def rows(self, clusters: Sequence[int]) -> dict[str, np.ndarray]:
        """Per style layer, the region's contribution row (sum of its clusters' rows)."""
        idx = list(clusters)
        return {name: self.contributions[name][idx].sum(0) for name in self.style_layers}

    def effect_rows(self, clusters: Sequence[int]) -> dict[str, np.ndarray]:
        """Per style layer with an effect matrix, the share of each channel's pixel effect inside."""
        from .effects import effect_shares

        return effect_shares(self.effects, clusters)

    def region_query(self, region: str | Sequence[str]) -> dict[str, Any] | None:
        """The tuned query settings of one named region (None for unions, masks, untuned names)."""
        names = [region] if isinstance(region, str) else list(region)
        if len(names) != 1:
            return None
        q = self.queries.get(names[0])
        return dict(q) if q else None

    # -- cluster maps -----------------------------------------------------------------------
    def check_compatible(self, gen: Generator) -> None:
        layout = {l.name: l.channels for l in gen.style_layout}
        for name in self.style_layers:
            if layout.get(name) != self.contributions[name].shape[1]:
                raise InputError(
                    f"region catalog was built for another model ({self.model}): layer {name!r} does not match"
                )
        if self.layer not in gen.tap_names:
            raise InputError(f"region catalog uses layer {self.layer!r}, which this model does not have")

    @torch.no_grad()
    def features(self, gen: Generator, styles: Mapping[str, Tensor]) -> Tensor:
        """Cluster-layer activations [N, C, h, w] for ``styles`` (synthesis stops early)."""
        stop = stop_for(gen, self.layer)
        try:
            res = gen.synthesize(styles, taps=[self.layer], stop_resolution=stop)
        except ValueError:
            res = gen.synthesize(styles, taps=[self.layer])
        return res.features[self.layer]

    @torch.no_grad()
    def scores(self, gen: Generator, styles: Mapping[str, Tensor]) -> Tensor:
        """Cosine similarities [N, K, h, w] of a face's cluster-layer pixels to the centroids."""
        feats = self.features(gen, styles)
        return cluster_scores(feats, torch.from_numpy(self.centroids).to(feats.device))

    @torch.no_grad()
    def cluster_map(self, gen: Generator, styles: Mapping[str, Tensor], size: int | None = None) -> Tensor:
        """Cluster label of every pixel [N, size, size] (int64), default the model's resolution."""
        size = size or gen.resolution
        return cluster_probs(self.scores(gen, styles), size).argmax(1)

    # -- persistence ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": CATALOG_FORMAT,
            "format_version": CATALOG_VERSION,
            "model": self.model,
            "layer": self.layer,
            "k": self.k,
            "style_layers": list(self.style_layers),
            "input_taps": self.input_taps,
            "names": {k: list(v) for k, v in self.names.items()},
            "queries": self.queries,
            "effect_layers": [n for n in self.style_layers if n in self.effects],
            "meta": self.meta,
        }

    def save(self, path: Path) -> Path:
        """Write ``<stem>.json`` + ``<stem>.npz`` atomically; returns the JSON path."""
        path = Path(path).with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"centroids": self.centroids.astype(np.float32), "area": self.area.astype(np.float32)}
        for i, name in enumerate(self.style_layers):
            arrays[f"M{i}"] = self.contributions[name].astype(np.float32)
            arrays[f"mean{i}"] = self.mean[name].astype(np.float32)
            arrays[f"std{i}"] = self.std[name].astype(np.float32)
            if name in self.effects:
                arrays[f"E{i}"] = self.effects[name].astype(np.float32)
        npz = path.with_suffix(".npz")
        tmp_npz = _tmp_beside(npz)
        tmp_json = _tmp_beside(path)
        try:
            with open(tmp_npz, "wb") as f:
                np.savez_compressed(f, **arrays)
            body = self.to_json()
            with open(tmp_npz, "rb") as f:
                body["arrays_sha256"] = hashlib.sha256(f.read()).hexdigest()
            tmp_json.write_text(json.dumps(body, indent=1))
            os.replace(tmp_npz, npz)
            os.replace(tmp_json, path)
        finally:
            tmp_npz.unlink(missing_ok=True)
            tmp_json.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: Path) -> "Catalog":
        path = Path(path).with_suffix(".json")
        npz = path.with_suffix(".npz")
        try:
            body = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: no such catalog") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{path.name}: not a readable region catalog ({exc})") from exc
        if body.get("format") != CATALOG_FORMAT:
            raise ModelFormatError(f"{path.name}: not a StyleStudio region catalog")
        if int(body.get("format_version", 0)) > CATALOG_VERSION:
            raise ModelFormatError(f"{path.name}: made by a newer StyleStudio")
        try:
            raw = npz.read_bytes()
            want = body.get("arrays_sha256")
            if want and hashlib.sha256(raw).hexdigest() != want:
                raise ModelFormatError(f"{npz.name}: does not match its catalog description (damaged file)")
            import io

            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            layers = tuple(body["style_layers"])
            k = int(body["k"])
            cat = cls(
                model=str(body["model"]),
                layer=str(body["layer"]),
                centroids=arrays["centroids"],
                style_layers=layers,
                contributions={n: arrays[f"M{i}"] for i, n in enumerate(layers)},
                mean={n: arrays[f"mean{i}"] for i, n in enumerate(layers)},
                std={n: arrays[f"std{i}"] for i, n in enumerate(layers)},
                input_taps={str(a): (None if b is None else str(b)) for a, b in body["input_taps"].items()},
                area=arrays["area"],
                names={str(n): tuple(int(c) for c in v) for n, v in body.get("names", {}).items()},
                meta=dict(body.get("meta", {})),
                effects={n: arrays[f"E{i}"] for i, n in enumerate(layers) if f"E{i}" in arrays},
                queries={str(n): dict(q) for n, q in body.get("queries", {}).items()},
            )
        except ModelFormatError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ModelFormatError(f"{path.name}: damaged region catalog ({type(exc).__name__}: {exc})") from exc
        if cat.centroids.shape[0] != k or any(cat.contributions[n].shape[0] != k for n in layers):
            raise ModelFormatError(f"{path.name}: inconsistent cluster count")
        if any(e.shape != cat.contributions[n].shape for n, e in cat.effects.items()):
            raise ModelFormatError(f"{path.name}: effect matrices do not match the contribution matrices")
        return cat


def _tmp_beside(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


# ---------------------------------------------------------------------------------------------
# finding catalogs


def user_catalog_path(model: str, name: str = DEFAULT_NAME) -> Path:
    """Where ``catalog build`` saves: ``<data>/catalogs/<model>/<name>.json``."""
    _check_name(name)
    return paths.data_home() / "catalogs" / model / f"{name}.json"


def shipped_catalog_path(model: str, name: str = DEFAULT_NAME) -> Path:
    return paths.resources_dir() / "catalogs" / model / f"{name}.json"


def find_catalog(model: str, name: str = DEFAULT_NAME) -> Path | None:
    """The user's catalog first, then the shipped one (the same order as :class:`Resources`)."""
    _check_name(name)
    for p in (user_catalog_path(model, name), shipped_catalog_path(model, name)):
        if p.is_file():
            return p
    return None


def _check_name(name: str) -> None:
    if not name or any(ch in name for ch in "/\\") or name.startswith("."):
        raise InputError(f"invalid catalog name {name!r}")


@register_resource_loader("catalog")
def _load_catalog_resource(res: Resources, name: str) -> Catalog:
    _check_name(name)
    path = res.find_file("catalogs", f"{name}.json")
    if path is None:
        raise InputError(
            f"no region catalog {name!r} for model {res.model!r}; build one with "
            f"`stylestudio catalog build --model {res.model}`"
        )
    cat = Catalog.load(path)
    cat.check_compatible(res.generator)
    return cat
