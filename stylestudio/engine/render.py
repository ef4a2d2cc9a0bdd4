"""Rendering: a pure function of an edit document, made fast by caches that never change results.

``Renderer.render(doc)`` = synthesize(apply edits in order to styles(source latent)). Caches:
the source latent per source, named resources (direction libraries, catalogs), and the last
render's per-stage activations, so an edit that only changes late layers (or a slider that moves
only fine layers) restarts synthesis at the first stage whose styles differ.
"""
from __future__ import annotations

import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from .. import paths
from ..errors import InputError
from .document import EditDocument, Source
from .generator import Generator

ResourceLoader = Callable[["Resources", str], Any]
_LOADERS: dict[str, ResourceLoader] = {}
MAX_NAME_LENGTH = 100


def check_resource_name(name: Any, what: str = "resource", where: str = "") -> str:
    """``name`` if it can name a resource file (a direction library, a region catalog, an encoder).

    Names become file names under ``<data>/<kind>/<model>/``, and they may come from a project
    file, so anything that could leave that folder or hide a file (a path separator, a leading
    dot, a control character) is refused. The one validator for every kind of resource name.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(name, str):
        raise InputError(f"{prefix}invalid {what} name {str(name)[:40]!r}: expected text")
    if (not name or len(name) > MAX_NAME_LENGTH or name.startswith(".") or name != name.strip()
            or any(ch in "/\\:" or unicodedata.category(ch)[0] == "C" for ch in name)):
        raise InputError(f"{prefix}invalid {what} name {name[:MAX_NAME_LENGTH]!r}: use at most "
                         f"{MAX_NAME_LENGTH} characters, no path separators, no leading dot")
    return name


def check_finite(tensor: Tensor, what: str) -> Tensor:
    """``tensor`` when every value is finite; a NaN or infinity would silently render black."""
    if not bool(torch.isfinite(tensor).all()):
        raise InputError(f"{what} holds NaN or infinite values; refusing to draw a black picture")
    return tensor


def check_finite_styles(styles: "dict[str, Tensor]", what: str) -> None:
    if not all(bool(torch.isfinite(v).all()) for v in styles.values()):
        raise InputError(f"{what} holds NaN or infinite values; refusing to draw a black picture")


def register_resource_loader(kind: str) -> Callable[[ResourceLoader], ResourceLoader]:
    """Register how to load resources of ``kind`` (``"directions"``, ``"catalog"``…) by name."""

    def deco(fn: ResourceLoader) -> ResourceLoader:
        _LOADERS[kind] = fn
        return fn

    return deco


class Resources:
    """Named, per-model resources, loaded once: user data folder first, then shipped ones."""

    def __init__(self, generator: Generator, model: str) -> None:
        self.generator = generator
        self.model = model
        self._cache: dict[tuple[str, str], Any] = {}

    def get(self, kind: str, name: str) -> Any:
        key = (kind, name)
        if key not in self._cache:
            check_resource_name(name, {"directions": "direction library"}.get(kind, kind))
            loader = _LOADERS.get(kind)
            if loader is None:
                raise InputError(f"no loader for resources of kind {kind!r}")
            self._cache[key] = loader(self, name)
        return self._cache[key]

    def put(self, kind: str, name: str, value: Any) -> None:
        self._cache[(kind, name)] = value

    def forget(self, kind: str, name: str) -> None:
        """Drop a loaded resource (it is loaded again when next asked for)."""
        self._cache.pop((kind, name), None)

    def find_file(self, kind: str, filename: str) -> Path | None:
        """``<data>/<kind>/<model>/<filename>``, else ``resources/<kind>/<model>/<filename>``."""
        check_resource_name(filename, "resource file")
        check_resource_name(self.model, "model")
        for root in (paths.data_home(), paths.resources_dir()):
            p = Path(root) / kind / self.model / filename
            if p.is_file():
                return p
        return None


@register_resource_loader("directions")
def _load_directions(res: Resources, name: str):
    from .directions.library import DirectionLibrary, check_library_name
    from .directions.sefa import sefa_library

    check_library_name(name)
    if name == "sefa":
        return sefa_library(res.generator, res.model)
    path = res.find_file("directions", f"{name}.ssdir")
    if path is None:
        raise InputError(f"no direction library {name!r} for model {res.model!r}")
    return DirectionLibrary.load(path)


@register_resource_loader("encoder")
def _load_encoder(res: Resources, name: str):
    """The photo-inversion encoder trained for this model (scripts/train_encoder.py)."""
    from .inversion.encoder import FeatureEncoder

    path = res.find_file("encoder", f"{name}.json")
    if path is None:
        raise InputError(f"no encoder {name!r} for model {res.model!r}")
    enc = FeatureEncoder.load(path)
    if enc.model != res.model or enc.w_dim != res.generator.w_dim:
        raise InputError(f"{path}: an encoder for {enc.model!r} ({enc.w_dim}-d W), not for {res.model!r} "
                         f"({res.generator.w_dim}-d W)")
    return enc


@dataclass
class _Context:
    """The :class:`~stylestudio.engine.document.EditContext` handed to edits."""

    generator: Generator
    source_ws: Tensor
    base_styles: dict[str, Tensor]
    renderer: "Renderer"

    def resource(self, kind: str, name: str) -> Any:
        return self.renderer.resources.get(kind, name)

    def source_styles(self, source: Source) -> dict[str, Tensor]:
        return self.renderer.styles_of(self.renderer.latent(source))


class Renderer:
    """Renders documents for one loaded model. Not thread-safe: the worker owns it."""

    def __init__(self, generator: Generator, model: str, resources: Resources | None = None,
                 latent_cache_size: int = 32) -> None:
        from . import edits  # noqa: F401  (register edit kinds)

        self.generator = generator
        self.model = model
        self.resources = resources or Resources(generator, model)
        self._latents: OrderedDict[tuple, Tensor] = OrderedDict()
        self._latent_cache_size = latent_cache_size
        self._last_styles: dict[str, Tensor] | None = None
        self._last_cache: dict[int, Any] = {}
        self._last_gen: Generator | None = None
        self._tuned: tuple[tuple, Generator] | None = None  # (source key, generator with its weight deltas)
        self.stats = {"renders": 0, "reused_stages": 0}

    # -- pieces -----------------------------------------------------------------------------
    @torch.no_grad()
    def latent(self, source: Source) -> Tensor:
        key = source.key()
        if key in self._latents:
            self._latents.move_to_end(key)
            return self._latents[key]
        ws = source.latent_with(self.generator, self.resources).detach()
        check_finite(ws, f"the latent of {source.label()!r}")
        self._latents[key] = ws
        while len(self._latents) > self._latent_cache_size:
            self._latents.popitem(last=False)
        return ws

    @torch.no_grad()
    def styles_of(self, ws: Tensor) -> dict[str, Tensor]:
        return self.generator.styles(ws)

    @torch.no_grad()
    def document_styles(self, doc: EditDocument) -> dict[str, Tensor]:
        ws = self.latent(doc.source)
        base = self.styles_of(ws)
        ctx = _Context(self.generator, ws, base, self)
        check_finite_styles(base, f"the styles of {doc.source.label()!r}")
        styles = base
        for i, edit in enumerate(doc.edits):
            if edit.enabled:
                styles = edit.apply(ctx, styles)
                if styles is not base:
                    check_finite_styles(styles, f"edit {i + 1} ({edit.kind})")
        return styles

    def synthesis_generator(self, source: Source) -> Generator:
        """The generator that draws ``source``: the model itself, or a copy carrying the weight
        deltas the source brings (a photo fine-tuned by PTI, ``source.weight_deltas``).

        Only synthesis weights may differ (PTI leaves the mapping and style affines alone), so
        latents and styles still come from ``self.generator`` and every edit means the same.
        """
        deltas = getattr(source, "weight_deltas", None)
        if not deltas:
            return self.generator
        key = source.key()
        if self._tuned is None or self._tuned[0] != key:
            from .inversion import apply_weight_deltas

            self._tuned = None  # free the previous copy before making the next
            self._tuned = (key, apply_weight_deltas(self.generator, deltas))
        return self._tuned[1]

    # -- whole renders ----------------------------------------------------------------------
    @torch.no_grad()
    def render_styles(self, styles: dict[str, Tensor], stop_resolution: int | None = None,
                      generator: Generator | None = None) -> Tensor:
        """Synthesize, restarting at the first stage whose styles differ from the last render.

        The state entering a stage does not depend on where a render stops, so a full frame
        continues from the stages its preview of the same styles already ran (the release of a
        slider costs only the stages past the preview), and a preview after a full frame reuses
        everything up to the first changed stage.
        """
        gen = generator or self.generator
        check_finite_styles(styles, "the styles to draw")
        last = len(gen.stage_names) - 1
        stop_stage = last if stop_resolution is None else min(gen.stage_of_resolution(stop_resolution), last)
        start = 0
        if self._last_styles is not None and self._last_cache and self._last_gen is gen:
            changed = [n for n, v in styles.items() if not torch.equal(v, self._last_styles[n])]
            reach = max(self._last_cache)
            start = min(gen.first_stage_of(changed) if changed else reach, reach, stop_stage)
            if start not in self._last_cache:
                start = 0
        result = gen.synthesize(styles, start=start, cache=self._last_cache if start else None,
                                keep_cache=True, stop_resolution=stop_resolution)
        # entries past ``start`` came from the old styles: only the new render's are valid there
        kept = {k: v for k, v in self._last_cache.items() if k <= start} if start else {}
        kept.update(result.cache)
        self._last_cache = kept
        self._last_styles = {k: v.clone() for k, v in styles.items()}
        self._last_gen = gen
        self.stats["renders"] += 1
        self.stats["reused_stages"] += start
        return result.image

    def render(self, doc: EditDocument, stop_resolution: int | None = None) -> Tensor:
        """The document's image [1, 3, H, W] in [-1, 1] (not clamped)."""
        return self.render_styles(self.document_styles(doc), stop_resolution, self.synthesis_generator(doc.source))


def to_uint8(image: Tensor):
    """[-1, 1] NCHW tensor (one image) → HxWx3 uint8 numpy array."""
    img = image.detach()
    if img.dim() == 4:
        img = img[0]
    img = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return img.permute(1, 2, 0).cpu().numpy()
