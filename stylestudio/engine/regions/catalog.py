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
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ... import paths
from ...errors import Cancelled, InputError, ModelFormatError
from ..generator import Generator
from ..resources import Resources, register_resource_loader

CATALOG_FORMAT = "stylestudio-catalog"
CATALOG_VERSION = 2  #: 2 adds effect matrices and per-region query settings (1 still loads)
DEFAULT_K = 14
DEFAULT_NAME = "default"

# The engine's one progress-and-cancel convention (engine/progress.py); old names kept.
from ..progress import CancelFlag, Progress, check_cancel, is_cancelled  # noqa: E402,F401

_is_cancelled = is_cancelled


def _check_cancel(cancel: CancelFlag) -> None:
    check_cancel(cancel, "catalog building was cancelled")


# ---------------------------------------------------------------------------------------------
# which activations a style layer acts on


def probe_taps(gen: Generator) -> dict[str, tuple[int, int, int]]:
    """(channels, height, width) of every tap, from one render of the average face."""
    with torch.no_grad():
        ws = gen.broadcast_w(gen.w_avg[None].to(gen.device))
        res = gen.synthesize(gen.styles(ws), taps=gen.tap_names)
    return {k: tuple(v.shape[1:]) for k, v in res.features.items()}  # type: ignore[misc]


def style_input_taps(gen: Generator, shapes: Mapping[str, tuple[int, int, int]]) -> dict[str, str | None]:
    """For each style layer, the tap holding the activations its style vector scales.

    A style modulates the *input* channels of its convolution, and that input is the output of
    the previous feature (non-RGB) layer in execution order. The very first layer reads a learned
    constant, which is not tapped; its own output (same width in every StyleGAN-like network)
    stands in. ``None`` when no tap matches the channel count: that layer's contributions then
    fall back to the clusters' area shares (no locality information).
    """
    out: dict[str, str | None] = {}
    prev: str | None = None
    for layer in gen.style_layout:
        chosen = None
        for cand in (prev, layer.name):
            if cand is not None and cand in shapes and shapes[cand][0] == layer.channels:
                chosen = cand
                break
        out[layer.name] = chosen
        if layer.kind != "rgb" and layer.name in shapes:
            prev = layer.name
    return out


def default_cluster_layer(gen: Generator) -> str:
    """The last feature layer at 32 px (or half the output size for tiny models).

    Collins et al. cluster a 32×32 StyleGAN layer: coarse enough to be semantic, fine enough to
    separate eyes, nose and mouth.
    """
    target = min(32, max(4, gen.resolution // 2))
    taps = set(gen.tap_names)
    cands = [l for l in gen.style_layout if l.kind != "rgb" and l.name in taps and l.resolution <= target]
    if not cands:
        raise InputError("this model exposes no feature layer to cluster")
    best = max(l.resolution for l in cands)
    return [l for l in cands if l.resolution == best][-1].name


def _stop_for(gen: Generator, tap: str) -> int | None:
    """The smallest ``stop_resolution`` whose render still contains ``tap``."""
    try:
        stage = gen.layer(tap).stage
    except KeyError:
        return None
    return max(l.resolution for l in gen.style_layout if l.stage == stage)


# ---------------------------------------------------------------------------------------------
# spherical k-means


def normalise_rows(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def spherical_kmeans(x: np.ndarray, k: int, *, seed: int = 0, n_init: int = 3, iters: int = 50,
                     tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the directions of the rows of ``x``: returns (unit centroids [k, C], labels).

    scikit-learn's k-means++ on the L2-normalised rows gives the start (Euclidean distance
    between unit vectors is monotone in their cosine); then Lloyd iterations of the spherical
    objective — assign by cosine, centroid = renormalised mean — keep the centroids on the sphere.
    """
    from sklearn.cluster import KMeans

    xn = normalise_rows(np.asarray(x, np.float32))
    if xn.shape[0] < k:
        raise InputError(f"k-means needs at least k={k} samples, got {xn.shape[0]}")
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed, max_iter=100).fit(xn)
    centroids = normalise_rows(km.cluster_centers_.astype(np.float32))
    labels = None
    prev_obj = -np.inf
    rng = np.random.RandomState(seed)
    for _ in range(iters):
        sims = xn @ centroids.T
        labels = sims.argmax(1)
        obj = float(sims[np.arange(len(xn)), labels].mean())
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, xn)
        empty = np.linalg.norm(sums, axis=1) < 1e-12
        if empty.any():  # re-seed an empty cluster with the worst-fitting rows
            worst = np.argsort(sims[np.arange(len(xn)), labels])[: int(empty.sum())]
            sums[empty] = xn[worst] + 1e-3 * rng.randn(int(empty.sum()), xn.shape[1]).astype(np.float32)
        centroids = normalise_rows(sums)
        if obj - prev_obj < tol:
            break
        prev_obj = obj
    labels = (xn @ centroids.T).argmax(1)
    return centroids, labels


# ---------------------------------------------------------------------------------------------
# cluster maps


def cluster_scores(features: Tensor, centroids: Tensor) -> Tensor:
    """Cosine similarity of every pixel's channel vector to every centroid: [N, K, H, W]."""
    f = F.normalize(features.float(), dim=1)
    return torch.einsum("nchw,kc->nkhw", f, centroids.to(f))


def cluster_probs(scores: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Hard cluster memberships at ``size`` [N, K, h, w] (one-hot when upsampling, soft when pooling).

    Upsampling interpolates the similarity maps before the argmax, so boundaries are smooth at any
    resolution; downsampling area-averages the one-hot map so memberships still sum to one.
    """
    h, w = (size, size) if isinstance(size, int) else size
    k = scores.shape[1]
    if h >= scores.shape[-2]:
        if (h, w) != tuple(scores.shape[-2:]):
            scores = F.interpolate(scores, size=(h, w), mode="bilinear", align_corners=False)
        return F.one_hot(scores.argmax(1), k).permute(0, 3, 1, 2).to(scores.dtype)
    onehot = F.one_hot(scores.argmax(1), k).permute(0, 3, 1, 2).to(scores.dtype)
    return F.adaptive_avg_pool2d(onehot, (h, w))


def resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """[N, 1, H, W] soft mask → ``size`` (area when shrinking, bilinear when growing)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    if size[0] <= mask.shape[-2]:
        return F.adaptive_avg_pool2d(mask, size)
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------------------------
# the catalog


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
        stop = _stop_for(gen, self.layer)
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


# ---------------------------------------------------------------------------------------------
# building


def sample_styles(gen: Generator, start: int, count: int, *, psi: float, seed: int) -> "OrderedDict[str, Tensor]":
    """Styles of the catalog's sample faces ``start … start+count-1`` (reproducible per index)."""
    zs = np.stack([np.random.RandomState([seed, start + i]).randn(gen.z_dim) for i in range(count)])
    z = torch.from_numpy(zs.astype(np.float32)).to(gen.device)
    return gen.styles(gen.mapping(z, psi))


class _Accumulator:
    """Running sums for M of one style layer; one pass, standardisation applied at the end.

    With Ã = (A − μ)/σ: Σ Ã²·U_k = (Σ A²U_k − 2μ Σ A U_k + μ² Σ U_k)/σ², and μ, σ come from the
    same sums (memberships sum to one at every pixel), so no second pass over the faces is needed.
    """

    def __init__(self, k: int, c: int) -> None:
        self.s2 = np.zeros((k, c))
        self.s1 = np.zeros((k, c))
        self.s0 = np.zeros(k)

    def add(self, acts: Tensor, probs: Tensor) -> None:
        a = acts.double()
        u = probs.double()
        self.s2 += torch.einsum("nkhw,nchw->kc", u, a * a).cpu().numpy()
        self.s1 += torch.einsum("nkhw,nchw->kc", u, a).cpu().numpy()
        self.s0 += u.sum((0, 2, 3)).cpu().numpy()

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        count = self.s0.sum()
        mu = self.s1.sum(0) / count
        var = np.maximum(self.s2.sum(0) / count - mu**2, 0.0)
        std = np.sqrt(var)
        dead = std < 1e-6 * max(float(std.max()), 1e-12)
        energy = self.s2 - 2 * mu * self.s1 + (mu**2) * self.s0[:, None]
        energy = np.maximum(energy, 0.0)
        col = energy.sum(0, keepdims=True)
        m = np.where(col > 0, energy / np.maximum(col, 1e-300), 0.0)
        area = self.s0 / count
        m[:, dead] = area[:, None]  # a constant channel acts everywhere alike
        return m.astype(np.float32), mu.astype(np.float32), np.where(dead, 1.0, std).astype(np.float32)


def build_catalog(
    gen: Generator,
    model: str,
    *,
    k: int = DEFAULT_K,
    layer: str | None = None,
    samples: int = 200,
    fit_samples: int | None = None,
    psi: float = 0.7,
    seed: int = 0,
    batch: int = 4,
    max_rows: int = 120_000,
    effect_samples: int = 0,
    progress: Progress | None = None,
    cancel: CancelFlag = None,
) -> Catalog:
    """Sample faces, cluster ``layer``, and measure every style layer's contributions.

    ``fit_samples`` faces (default ``samples``) feed k-means, at most ``max_rows`` pixels of them;
    all ``samples`` faces feed M. ``progress(message, fraction)`` is called along the way and
    ``cancel`` (callable or Event) is polled between batches: raises :class:`Cancelled`.
    ``effect_samples`` > 0 also measures the pixel-effect matrices (regions.effects) on that many
    faces at the generator's 256-px preview, for the effect query.
    """
    if not 2 <= k <= 64:
        raise InputError(f"k must be between 2 and 64, got {k}")
    if samples < 1:
        raise InputError(f"samples must be positive, got {samples}")
    fit_samples = min(samples, fit_samples or samples)
    layer = layer or default_cluster_layer(gen)
    if layer not in gen.tap_names:
        raise InputError(f"unknown layer {layer!r}; this model has: {', '.join(gen.tap_names)}")
    report = progress or (lambda m, f: None)
    t0 = time.time()
    shapes = probe_taps(gen)
    if len(shapes[layer]) != 3 or shapes[layer][1] < 2:
        raise InputError(f"layer {layer!r} is not a spatial feature map")
    inputs = style_input_taps(gen, shapes)
    rng = np.random.RandomState(seed)

    # 1. activations of the cluster layer → spherical k-means
    c, h, w = shapes[layer]
    per_face = max(1, min(h * w, max_rows // fit_samples))
    rows = []
    done = 0
    with torch.no_grad():
        stop = _stop_for(gen, layer)
        for i in range(0, fit_samples, batch):
            _check_cancel(cancel)
            n = min(batch, fit_samples - i)
            styles = sample_styles(gen, i, n, psi=psi, seed=seed)
            try:
                feats = gen.synthesize(styles, taps=[layer], stop_resolution=stop).features[layer]
            except ValueError:
                feats = gen.synthesize(styles, taps=[layer]).features[layer]
            x = feats.float().permute(0, 2, 3, 1).reshape(n, h * w, c).cpu().numpy()
            for face in x:
                pick = rng.choice(h * w, per_face, replace=False) if per_face < h * w else slice(None)
                rows.append(face[pick])
            done += n
            report(f"cluster layer activations {done}/{fit_samples}", 0.25 * done / fit_samples)
    _check_cancel(cancel)
    report(f"spherical k-means (k={k}) on {sum(len(r) for r in rows)} pixels", 0.25)
    centroids, _ = spherical_kmeans(np.concatenate(rows), k, seed=seed)
    del rows
    _check_cancel(cancel)

    # 2. cluster memberships on every style layer's input → contribution matrices
    cent = torch.from_numpy(centroids).to(gen.device)
    taps = sorted({t for t in inputs.values() if t is not None} | {layer})
    accs = {name: _Accumulator(k, gen.layer(name).channels) for name in inputs}
    area = np.zeros(k)
    done = 0
    with torch.no_grad():
        for i in range(0, samples, batch):
            _check_cancel(cancel)
            n = min(batch, samples - i)
            styles = sample_styles(gen, fit_samples + i, n, psi=psi, seed=seed)
            feats = gen.synthesize(styles, taps=taps).features
            scores = cluster_scores(feats[layer], cent)
            area += cluster_probs(scores, scores.shape[-2:]).double().mean((2, 3)).sum(0).cpu().numpy()
            probs_at: dict[tuple[int, int], Tensor] = {}
            for name, tap in inputs.items():
                if tap is None:
                    continue
                acts = feats[tap]
                size = tuple(acts.shape[-2:])
                if size not in probs_at:
                    probs_at[size] = cluster_probs(scores, size)  # type: ignore[arg-type]
                accs[name].add(acts, probs_at[size])  # type: ignore[index]
            done += n
            report(f"contributions {done}/{samples}", 0.25 + 0.75 * done / samples)
    area /= samples
    order = np.argsort(-area, kind="stable")  # biggest clusters first: stable, readable numbering
    contributions, mean, std = {}, {}, {}
    for name in inputs:
        if inputs[name] is None:
            ch = gen.layer(name).channels
            m, mu, sd = np.repeat(area[:, None], ch, 1).astype(np.float32), np.zeros(ch, np.float32), np.ones(ch, np.float32)
        else:
            m, mu, sd = accs[name].finish()
        contributions[name] = m[order]
        mean[name], std[name] = mu, sd
    meta = {"samples": samples, "fit_samples": fit_samples, "psi": psi, "seed": seed,
            "built": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.time() - t0, 1),
            "arch": gen.arch, "resolution": gen.resolution}
    cat = Catalog(model=model, layer=layer, centroids=centroids[order], style_layers=tuple(inputs),
                  contributions=contributions, mean=mean, std=std, input_taps=inputs,
                  area=area[order].astype(np.float32), meta=meta)
    if effect_samples > 0:
        from ..directions.labels import preview_stop
        from .effects import measure_effects

        stop = preview_stop(gen, 256)
        cat.effects = measure_effects(gen, cat, samples=effect_samples, stop_resolution=stop, psi=psi, seed=seed,
                                      cancel=cancel, progress=lambda m, f: report(m, 0.99 * f))
        cat.meta["effects"] = {"samples": effect_samples, "probes": 2, "stop_resolution": stop}
        cat.meta["seconds"] = round(time.time() - t0, 1)
    report("done", 1.0)
    return cat
