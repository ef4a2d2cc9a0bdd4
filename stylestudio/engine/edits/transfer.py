"""Regional transfer: take one region's look from a reference face (Editing in Style).

The region is either named clusters of the model's catalog (``region``: ``("mouth",)``,
``("eyes", "nose")``, ``("c3",)``) or a mask painted on the target (``mask``, any resolution,
0–255 or 0–1). A query over the catalog's contribution matrices picks, per style layer, the
channels that act inside the region, and the edit moves only those towards the reference:
``σ_G = σ_S + strength·diag(q)·(σ_R − σ_S)``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
from torch import Tensor

from ..document import (Arrays, Edit, EditContext, SeedSource, Source, _plain_fields, as_bool, as_choice,
                        as_names, as_number, as_text, at, construct, field_error, frozen_array, new_edit_id,
                        register_edit, source_from_json, sub_arrays)
from ..limits import MAX_MASK_PIXELS
from ..resources import check_resource_name
from ..regions.catalog import DEFAULT_NAME, Catalog
from ..progress import Cancel, Progress
from ..regions.fit import PRESETS as FIT_PRESETS, FitSettings, fit_named_region, fit_query, fit_starts
from ..regions.fitted import FittedQuery, fingerprint
from ..regions.masks import DEFAULT_COVERAGE, DEFAULT_MASK_MODE, MASK_MODES, mask_array, mask_clusters, mask_rows
from ..regions.queries import QueryParams, blend_styles, query_layers
from ...errors import InputError

MAX_STRENGTH = 2.0
MAX_MASK_SIDE = 4096  #: painted masks: at most 4096 on a side (and limits.MAX_MASK_PIXELS in all)
_QUERY_CACHE_SIZE = 64


def _styles_digest(styles: Mapping[str, Tensor]) -> str:
    h = hashlib.sha1()
    for name, v in styles.items():
        h.update(name.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


@register_edit
@dataclass(frozen=True, eq=False)
class TransferEdit(Edit):
    """Move ``region`` (or the painted ``mask``) of the face towards ``reference``."""

    kind: ClassVar[str] = "transfer"
    array_fields: ClassVar[tuple[str, ...]] = ("mask",)
    field_checks: ClassVar[dict[str, Callable[[Any, str], Any]]] = {
        "region": as_names,
        "mask_mode": lambda v, w: as_choice(v, w, MASK_MODES),
        "coverage": lambda v, w: as_number(v, w, 0.0, 1.0),
        "strength": lambda v, w: as_number(v, w, 0.0, MAX_STRENGTH),
        "catalog": lambda v, w: check_resource_name(v, "region catalog", w),
        "query": lambda v, w: as_text(v, w, 100),
        "lam": lambda v, w: as_number(v, w, 0.0, 1e6),
        "eps": lambda v, w: as_number(v, w, 0.0, 1e6),
        "rho": lambda v, w: as_number(v, w, 0.0, 1.0),
        "tau": lambda v, w: as_number(v, w, 0.0, 1.0),
        "fit": as_bool,
        "fit_preset": lambda v, w: as_choice(v, w, tuple(FIT_PRESETS)),
        "id": lambda v, w: as_text(v, w, 200),
        "enabled": as_bool,
    }
    reference: Source = field(default_factory=SeedSource)
    region: tuple[str, ...] = ()
    mask: np.ndarray | None = None
    mask_mode: str = DEFAULT_MASK_MODE  #: ``clusters`` or ``activations`` (see regions.masks)
    coverage: float = DEFAULT_COVERAGE  #: clusters mode: share of a cluster the mask must cover
    strength: float = 1.0
    catalog: str = DEFAULT_NAME
    query: str = "sequential"
    lam: float = QueryParams.lam
    eps: float = QueryParams.eps
    rho: float = QueryParams.rho
    tau: float = QueryParams.tau
    #: "fit to this face": ``q`` fitted to this target and reference (regions.fit) instead of the
    #: query above; stronger and more local, seconds per new pair on a CPU, so a job fits it
    #: (``tasks.FitRegion``) and puts it in ``fitted``; until then the query above is drawn
    fit: bool = False
    #: which fit (``regions.fit.PRESETS``). ``full`` here because a transfer saved before the presets
    #: (no such field) was fitted fully; new transfers in the editor and the CLI ask for
    #: ``regions.fit.NEW_TRANSFER_PRESET`` (quick) with ``fit`` on
    fit_preset: str = "full"
    fitted: FittedQuery | None = None
    id: str = field(default_factory=new_edit_id)
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.reference, Source):
            raise InputError("the reference of a transfer must be a face source")
        if self.fitted is not None and not isinstance(self.fitted, FittedQuery):
            raise InputError("the fitted query of a transfer must be a FittedQuery")
        if isinstance(self.region, str):
            object.__setattr__(self, "region", (self.region,))
        check_resource_name(self.catalog, "region catalog")
        if self.mask is not None:
            if self.region:
                raise InputError("give either named regions or a painted mask, not both")
            object.__setattr__(self, "mask", self._stored_mask(self.mask))
        if self.fit_preset not in FIT_PRESETS:
            raise InputError(f"fit preset must be one of {', '.join(FIT_PRESETS)}, got {self.fit_preset!r}")
        if self.mask_mode not in MASK_MODES:
            raise InputError(f"mask mode must be one of {', '.join(MASK_MODES)}, got {self.mask_mode!r}")
        if not 0.0 < float(self.coverage) <= 1.0:
            raise InputError(f"coverage must be in (0, 1], got {self.coverage}")
        s = float(self.strength)
        if not np.isfinite(s) or not 0.0 <= s <= MAX_STRENGTH:
            raise InputError(f"strength must be between 0 and {MAX_STRENGTH:g}, got {self.strength}")
        self.params  # validates the query settings

    @staticmethod
    def _stored_mask(mask: np.ndarray) -> np.ndarray:
        """Masks are stored as uint8 0–255: small in projects, exact on reload."""
        m = np.asarray(mask)
        if m.ndim >= 2 and (max(m.shape[:2]) > MAX_MASK_SIDE or m.shape[0] * m.shape[1] > MAX_MASK_PIXELS):
            raise InputError(f"mask: {m.shape[1]}×{m.shape[0]} pixels; painted masks are at most "
                             f"{MAX_MASK_SIDE}×{MAX_MASK_SIDE}")
        if m.dtype.kind == "f" and not np.isfinite(m).all():
            raise InputError("mask: holds NaN or infinite values")
        if m.dtype == np.uint8 and m.ndim == 2:
            mask_array(m)
        else:
            m = np.round(mask_array(m) * 255.0).astype(np.uint8)
        return frozen_array(m)  # the document is a value: its mask can never change under it

    @property
    def params(self) -> QueryParams:
        return QueryParams(self.query, float(self.lam), float(self.eps), float(self.rho), float(self.tau))

    # -- serialisation: the reference is a nested source with arrays of its own ------------
    def to_json(self) -> dict[str, Any]:
        body = {"kind": self.kind, **_plain_fields(self, ("mask", "reference", "fitted"))}
        body["reference"] = self.reference.to_json()
        if self.fitted is not None:
            body["fitted"] = self.fitted.to_json()
        return body

    def arrays(self) -> Arrays:
        out: Arrays = {}
        if self.mask is not None:
            out["mask"] = np.asarray(self.mask)
        for k, v in self.reference.arrays().items():
            out[f"reference.{k}"] = v
        if self.fitted is not None:
            for k, v in self.fitted.arrays().items():
                out[f"fitted.{k}"] = v
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str = "") -> "TransferEdit":
        if not isinstance(data, Mapping):
            raise field_error(where, "expected an object {…}")
        data = dict(data)
        ref = data.pop("reference", None)
        if not isinstance(ref, Mapping):
            raise field_error(at(where, "reference"), "missing: a transfer needs a reference face")
        reference = source_from_json(ref, sub_arrays(arrays, "reference."), at(where, "reference"))
        fitted = data.pop("fitted", None)
        if fitted is not None:
            fitted = FittedQuery.from_json(fitted, sub_arrays(arrays, "fitted."), at(where, "fitted"))
        edit = super().from_json(data, arrays, where)  # reads only its own array, "mask"
        return construct(_replace, {"edit": edit, "reference": reference, "fitted": fitted}, where)

    # -- the edit ---------------------------------------------------------------------------
    def has_region(self) -> bool:
        return bool(self.region) or self.mask is not None

    def q(self, ctx: EditContext, styles: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
        """Per style layer, the channels taken from the reference (cached per catalog). With ``fit``
        on, the fitted query when it belongs to this face and transfer (never fitted here: renders
        must stay fast; until a fit lands the region's own query is drawn)."""
        if self.fit and self.fitted is not None and self.fitted.fits(self.fit_inputs, ctx.base_styles):
            return dict(self.fitted.q)
        cat: Catalog = ctx.resource("catalog", self.catalog)
        params = self.params
        if self.mask is None:
            key: tuple = ("named", cat.resolve(self.region), params)
        else:
            key = (*self._mask_key(), _styles_digest(styles), params)
        hit = cat.cache.get(key)
        if hit is not None:
            return hit
        if self.mask is None:
            rows, effects = cat.rows(key[1]), cat.effect_rows(key[1])
        else:
            rows, effects = self._mask_rows(ctx.generator, cat, styles)
        return _remember(cat, key, query_layers(rows, params, effects))

    def _mask_rows(self, gen: Any, cat: Catalog, styles: Mapping[str, Tensor]) -> tuple[dict, dict | None]:
        """The painted region's contribution rows (and pixel-effect rows, when it maps to clusters)."""
        if self.mask_mode == "clusters":
            clusters = mask_clusters(cat, gen, styles, self.mask, self.coverage)
            return cat.rows(clusters), cat.effect_rows(clusters)
        # activations inside the mask: no pixel-effect version, the effect query falls back
        return mask_rows(cat, gen, styles, self.mask), None

    def _mask_key(self) -> tuple:
        """What identifies the painted region in the query caches."""
        assert self.mask is not None
        mh = hashlib.sha1(np.ascontiguousarray(self.mask).tobytes() + str(self.mask.shape).encode()).hexdigest()
        return ("mask", self.mask_mode, self.coverage if self.mask_mode == "clusters" else None, mh)

    @cached_property
    def fit_inputs(self) -> str:
        """What a fit of this transfer depends on besides the face: the reference, the region and
        the query settings (its second start), the catalog and the preset. A strength change keeps
        it. The full preset adds nothing, so fits saved before the presets still belong."""
        what = ("named", tuple(self.region)) if self.mask is None else self._mask_key()
        preset = () if self.fit_preset == "full" else (self.fit_preset,)
        return hashlib.sha1(repr(("fit", self.reference.key(), what, self.params, self.catalog, *preset)).encode()
                            ).hexdigest()

    @property
    def fit_settings(self) -> FitSettings:
        """How this transfer is fitted (its preset)."""
        return FIT_PRESETS[self.fit_preset]

    def fitted_to(self, gen: Any, cat: Catalog, base: Mapping[str, Tensor], reference: Mapping[str, Tensor],
                  face: str, settings: FitSettings | None = None, progress: Progress | None = None,
                  cancel: Cancel = None) -> FittedQuery:
        """Fit ``q`` to the face whose styles before any edit are ``base`` (so moving a slider never
        asks for a new fit) and the reference's styles; ``face``: its :func:`~..regions.fitted.face_key`.
        ``settings``: the transfer's own preset unless given. About a second (quick) to seconds
        (full) on a CPU: run by ``tasks.FitRegion`` in a job, never by a render."""
        settings = settings if settings is not None else self.fit_settings
        if not self.has_region():
            raise InputError("pick or paint a region before fitting the transfer to the face")
        if self.mask is None:
            q = fit_named_region(gen, cat, base, reference, cat.resolve(self.region), settings, also=self.params,
                                 progress=progress, cancel=cancel)
        else:  # the painted mask is the region; its clusters (or activations) say which channels may move
            rows, effects = self._mask_rows(gen, cat, base)
            q = fit_query(gen, base, reference, mask_array(self.mask) >= 0.5,
                          fit_starts(rows, effects, settings, also=self.params), settings,
                          progress=progress, cancel=cancel)
        return FittedQuery(self.fit_inputs, face, fingerprint(base), q)

    def is_fitted_for(self, face: str) -> bool:
        """Does :attr:`fitted` belong to this transfer on the face with :func:`~..regions.fitted.face_key`
        ``face``? (What the GUI and CLI ask before starting a fit.)"""
        return self.fitted is not None and self.fitted.inputs == self.fit_inputs and self.fitted.face_key == face

    def apply(self, ctx: EditContext, styles: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.enabled or self.strength == 0.0 or not self.has_region():
            return styles
        reference = ctx.source_styles(self.reference)
        q = self.q(ctx, styles)
        return blend_styles(styles, reference, q, float(self.strength))

    def describe(self) -> str:
        what = "painted region" if self.mask is not None else " + ".join(self.region) or "no region"
        fitted = ", fitted" + (f" ({self.fit_preset})" if self.fit_preset != "full" else "") if self.fit else ""
        return f"{what} from {self.reference.label()} ×{self.strength:.2f}{fitted}"


def _remember(cat: Catalog, key: tuple, q: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keep ``q`` in the catalog's bounded query cache (oldest out first)."""
    if len(cat.cache) >= _QUERY_CACHE_SIZE:
        cat.cache.pop(next(iter(cat.cache)))
    cat.cache[key] = q
    return q


def query_fields(tuned: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """Query fields for a transfer: a region's tuned settings (``Catalog.region_query``) or the
    global defaults, then any ``overrides`` that are not None."""
    params = QueryParams()
    if tuned:
        params = QueryParams.from_mapping(tuned)
    fields = {"query": params.kind, "lam": params.lam, "eps": params.eps, "rho": params.rho, "tau": params.tau}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return fields


def _replace(edit: TransferEdit, **changes: Any) -> TransferEdit:
    import dataclasses

    return dataclasses.replace(edit, **changes)
