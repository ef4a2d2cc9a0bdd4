"""Rendering: a pure function of an edit document, made fast by caches that never change results.

``Renderer.render(doc)`` = synthesize(apply edits in order to styles(source latent)). Caches:
the source latent per source, named resources (direction libraries, catalogs: :mod:`.resources`), and the last
render's per-stage activations, so an edit that only changes late layers (or a slider that moves
only fine layers) restarts synthesis at the first stage whose styles differ.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from .document import EditDocument, Source
from .generator import Generator
from .resources import Resources


def check_finite(tensor: Tensor, what: str) -> Tensor:
    """``tensor`` when every value is finite; a NaN or infinity would silently render black."""
    if not bool(torch.isfinite(tensor).all()):
        raise InputError(f"{what} holds NaN or infinite values; refusing to draw a black picture")
    return tensor


def check_finite_styles(styles: "dict[str, Tensor]", what: str) -> None:
    if not all(bool(torch.isfinite(v).all()) for v in styles.values()):
        raise InputError(f"{what} holds NaN or infinite values; refusing to draw a black picture")


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
                      generator: Generator | None = None, display: bool = False) -> Tensor:
        """Synthesize, restarting at the first stage whose styles differ from the last render.

        The state entering a stage does not depend on where a render stops, so a full frame
        continues from the stages its preview of the same styles already ran (the release of a
        slider costs only the stages past the preview), and a preview after a full frame reuses
        everything up to the first changed stage. ``display``: a coarse frame only shown, never
        measured (see :meth:`Generator.synthesize`).
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
                                keep_cache=True, stop_resolution=stop_resolution, display=display)
        # entries past ``start`` came from the old styles: only the new render's are valid there
        kept = {k: v for k, v in self._last_cache.items() if k <= start} if start else {}
        kept.update(result.cache)
        self._last_cache = kept
        self._last_styles = {k: v.clone() for k, v in styles.items()}
        self._last_gen = gen
        self.stats["renders"] += 1
        self.stats["reused_stages"] += start
        return result.image

    def render(self, doc: EditDocument, stop_resolution: int | None = None, display: bool = False) -> Tensor:
        """The document's image [1, 3, H, W] in [-1, 1] (not clamped)."""
        return self.render_styles(self.document_styles(doc), stop_resolution, self.synthesis_generator(doc.source),
                                  display)


def to_uint8(image: Tensor):
    """[-1, 1] NCHW tensor (one image) → HxWx3 uint8 numpy array."""
    img = image.detach()
    if img.dim() == 4:
        img = img[0]
    img = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return img.permute(1, 2, 0).cpu().numpy()
