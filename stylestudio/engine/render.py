"""Rendering: a pure function of an edit document, made fast by caches that never change results.

``Renderer.render(doc)`` = synthesize(apply edits in order to styles(source latent)). Caches:
the source latent per source, named resources (direction libraries, catalogs: :mod:`.resources`), and the last
render's per-stage activations, so an edit that only changes late layers (or a slider that moves
only fine layers) restarts synthesis at the first stage whose styles differ. A coarse display frame
may be drawn by a reduced-precision copy of the generator (:mod:`.precision`); it keeps its own
activations, and nothing it computes reaches a full-precision frame.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from .document import EditDocument, KeptLibrary, Source
from .generator import Generator
from .precision import reduced_copy
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
    kept: tuple[KeptLibrary, ...] = ()  #: the document's library copies

    def resource(self, kind: str, name: str) -> Any:
        return self.renderer.resources.get(kind, name)

    def library_for(self, edit: Any) -> Any:
        from .edits.kept import resolve

        return resolve(edit, self.renderer.resources, self.kept)[0]

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
        #: per generator drawn with (id → generator, its last styles, its per-stage activations)
        self._last: OrderedDict[int, tuple[Generator, dict[str, Tensor], dict[int, Any]]] = OrderedDict()
        self._reduced: tuple[Generator, torch.dtype, Generator] | None = None  # (original, dtype, copy)
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
        ctx = _Context(self.generator, ws, base, self, doc.libraries)
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

            if self._tuned is not None:
                self._last.pop(id(self._tuned[1]), None)
            self._tuned = None  # free the previous copy before making the next
            self._tuned = (key, apply_weight_deltas(self.generator, deltas))
        return self._tuned[1]

    # -- whole renders ----------------------------------------------------------------------
    #: generators whose last render is remembered (the model, its preview copy, a PTI copy)
    MAX_REMEMBERED = 3

    def reduced(self, gen: Generator, dtype: torch.dtype) -> Generator:
        """``gen`` in ``dtype`` (made once per generator: a PTI-tuned source gets its own copy)."""
        if self._reduced is None or self._reduced[0] is not gen or self._reduced[1] != dtype:
            if self._reduced is not None:
                self._last.pop(id(self._reduced[2]), None)
            self._reduced = None  # free the previous copy before making the next
            self._reduced = (gen, dtype, reduced_copy(gen, dtype))
        return self._reduced[2]

    @torch.no_grad()
    def render_styles(self, styles: dict[str, Tensor], stop_resolution: int | None = None,
                      generator: Generator | None = None, display: bool = False,
                      precision: torch.dtype | None = None) -> Tensor:
        """Synthesize, restarting at the first stage whose styles differ from the last render.

        The state entering a stage does not depend on where a render stops, so a full frame
        continues from the stages its preview of the same styles already ran (the release of a
        slider costs only the stages past the preview), and a preview after a full frame reuses
        everything up to the first changed stage. ``display``: a coarse frame only shown, never
        measured (see :meth:`Generator.synthesize`). ``precision``: draw such a frame with a copy
        of the generator in this dtype (drag previews, :mod:`.precision`); ignored for full frames
        and measured ones, which always use the generator's own precision (its image comes back in float32).
        """
        gen = generator or self.generator
        check_finite_styles(styles, "the styles to draw")
        reduced = precision is not None and display and stop_resolution is not None
        if reduced:
            gen = self.reduced(gen, precision)
            styles = {k: v.to(precision) for k, v in styles.items()}
        last = len(gen.stage_names) - 1
        stop_stage = last if stop_resolution is None else min(gen.stage_of_resolution(stop_resolution), last)
        start = 0
        before = self._last.get(id(gen))  # the entry holds ``gen``, so its id cannot be reused
        if before is not None and before[2]:
            _, last_styles, last_cache = before
            changed = [n for n, v in styles.items() if not torch.equal(v, last_styles[n])]
            reach = max(last_cache)
            start = min(gen.first_stage_of(changed) if changed else reach, reach, stop_stage)
            if start not in last_cache:
                start = 0
        else:
            last_cache = {}
        result = gen.synthesize(styles, start=start, cache=last_cache if start else None,
                                keep_cache=True, stop_resolution=stop_resolution, display=display)
        # entries past ``start`` came from the old styles: only the new render's are valid there
        kept = {k: v for k, v in last_cache.items() if k <= start} if start else {}
        kept.update(result.cache)
        self._last.pop(id(gen), None)
        self._last[id(gen)] = (gen, {k: v.clone() for k, v in styles.items()}, kept)
        while len(self._last) > self.MAX_REMEMBERED:
            self._last.popitem(last=False)
        self.stats["renders"] += 1
        self.stats["reused_stages"] += start
        return result.image.float() if reduced else result.image

    def render(self, doc: EditDocument, stop_resolution: int | None = None, display: bool = False,
               precision: torch.dtype | None = None) -> Tensor:
        """The document's image [1, 3, H, W] in [-1, 1] (not clamped); see :meth:`render_styles`."""
        return self.render_styles(self.document_styles(doc), stop_resolution, self.synthesis_generator(doc.source),
                                  display, precision)


def to_uint8(image: Tensor):
    """[-1, 1] NCHW tensor (one image) → HxWx3 uint8 numpy array."""
    img = image.detach()
    if img.dim() == 4:
        img = img[0]
    img = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return img.permute(1, 2, 0).cpu().numpy()
