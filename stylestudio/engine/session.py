"""A session of the engine: the loaded models, the device and their resources (no Qt).

:class:`Engine` (also known as :data:`Session`) is what every task in :mod:`.tasks` runs
against. It is not thread-safe: each thread that runs engine work has its own session (the GUI
has two, one for renders and one for long jobs, see ``app/render_worker.py`` and
``app/job_worker.py``; the CLI has one).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .device import pick_device
from .document import EditDocument, KeptLibrary, seed_to_z
from .generator import Generator
from .model_store import ModelStore
from .precision import preview_dtype
from .progress import Progress
from .render import Renderer, to_uint8
from .resources import Resources

QUALITIES = ("preview", "final")


@dataclass(frozen=True)
class ModelDescription:
    name: str
    arch: str
    resolution: int
    num_ws: int
    w_dim: int
    device: str
    parameters: int
    style_layers: int



@dataclass
class LoadedModel:
    name: str
    generator: Generator
    resources: Resources
    renderers: dict[str, Renderer]
    description: ModelDescription
    #: output pixels per unit of ``stop_resolution`` (1 for StyleGAN2, 2 for wavelet models)
    stop_scale: float | None = None
    #: smoothed seconds of a preview render per ``stop_resolution`` (for adaptive previews)
    preview_times: dict[int, float] = field(default_factory=dict)
    previews: int = 0


class Engine:
    """Loaded models and their renderers, on one device. Only one thread may use a session:
    the GUI's render thread has one, its job thread another (a copy of each model it uses), the
    CLI one for the command."""

    MAX_LOADED = 2
    #: previews are never smaller than this (a photographer judges skin and wrinkles on them):
    #: the budget only decides whether a sharper stage is affordable
    MIN_PREVIEW_PX = 256
    PREVIEW_RETRY = 20  #: every Nth preview may retry a stage once found too slow

    def __init__(self, device: str = "auto", threads: int = 0, store: ModelStore | None = None,
                 preview_budget_ms: float = 60.0, fast_previews: bool = True) -> None:
        self.store = store or ModelStore()
        self.preview_budget_s = preview_budget_ms / 1000
        self.device_name = device
        self.device = pick_device(device)
        if threads > 0:
            torch.set_num_threads(threads)
        self.models: OrderedDict[str, LoadedModel] = OrderedDict()
        self.set_fast_previews(fast_previews)
        #: resources installed by tasks run in this session (see :meth:`install`)
        self.published: list[tuple[str, str, str, Any]] = []

    def set_device(self, device: str) -> None:
        dev = pick_device(device)
        self.device_name = device
        if dev != self.device:
            self.device = dev
            self.models.clear()
        self.set_fast_previews(self.fast_previews)

    def set_fast_previews(self, enabled: bool) -> None:
        """Whether drag previews may be drawn in reduced precision where the device computes it
        natively (:mod:`.precision`); :attr:`preview_precision` is the outcome (None: exact)."""
        self.fast_previews = bool(enabled)
        self.preview_precision = preview_dtype(self.device, self.fast_previews)
        for m in self.models.values():
            m.preview_times.clear()  # the speeds measured belong to the other precision

    def is_loaded(self, name: str) -> bool:
        return name in self.models

    def model(self, name: str, progress: Progress | None = None) -> LoadedModel:
        """The loaded model ``name`` (loaded, or provisioned, on first use)."""
        if name in self.models:
            self.models.move_to_end(name)
            return self.models[name]
        gen = self.store.load(name, device=self.device, progress=progress)
        resources = Resources(gen, name)
        # previews and full frames share one renderer, so a full frame continues from the stages
        # its preview ran; the unedited "before" image keeps its own (another document)
        shared = Renderer(gen, name, resources)
        renderers = {**{q: shared for q in QUALITIES}, "before": Renderer(gen, name, resources)}
        d = gen.describe()
        desc = ModelDescription(name, d["arch"], d["resolution"], d["num_ws"], d["w_dim"], str(self.device),
                                d["parameters"], d["style_layers"])
        loaded = LoadedModel(name, gen, resources, renderers, desc)
        loaded.stop_scale = self._probe_stop_scale(gen)
        self.models[name] = loaded
        while len(self.models) > self.MAX_LOADED:
            self.models.popitem(last=False)
        return loaded

    @staticmethod
    def _probe_stop_scale(gen: Generator) -> float | None:
        """Output pixels per unit of ``stop_resolution`` (1 for StyleGAN2, 2 for wavelet models),
        from the generator's own ``preview_size`` (no render needed)."""
        coarsest = min(l.resolution for l in gen.style_layout)
        return gen.preview_size(coarsest) / coarsest

    def install(self, model: str, kind: str, name: str, value: Any) -> None:
        """Make a resource a task just made (a catalog, a direction library) current in this
        session, and remember it in :attr:`published` so the sessions of other threads can be told
        (the GUI's job thread forwards it to the render thread's session). ``value`` None: the
        resource was deleted (it is loaded from disk again if asked for, and missing there)."""
        if model in self.models:
            if value is None:
                self.models[model].resources.forget(kind, name)
            else:
                self.models[model].resources.put(kind, name, value)
        self.published.append((model, kind, name, value))

    def release(self, items: list[tuple[str, str, str, Any]]) -> None:
        """Hand published resources over to another session: this one forgets them (it loads them
        again from disk when it needs them), so no mutable object, e.g. a catalog's query cache, is
        ever used by two threads."""
        for model, kind, name, _value in items:
            if model in self.models:
                self.models[model].resources.forget(kind, name)

    def take_published(self) -> list[tuple[str, str, str, Any]]:
        """The resources installed since the last call (and forget them)."""
        out, self.published = self.published, []
        return out

    def generator(self, name: str) -> Generator:
        return self.model(name).generator

    def renderer(self, name: str, quality: str = "final") -> Renderer:
        return self.model(name).renderers[quality]

    def library_versions(self, doc: EditDocument) -> dict[str, str]:
        """Edit id → the version of the library entry each slider edit of ``doc`` renders with now
        (:mod:`.edits.versions`: saving stamps it, opening compares)."""
        from .edits.versions import current_versions

        m = self.model(doc.model)
        return current_versions(doc, m.resources, m.generator.num_ws)

    def library_copies(self, doc: EditDocument) -> "tuple[KeptLibrary, ...]":
        """The copies of its sliders' libraries a save of ``doc`` keeps (:mod:`.edits.kept`)."""
        from .edits.kept import copies_to_keep

        return copies_to_keep(doc, self.model(doc.model).resources)

    def drawn_from_copies(self, doc: EditDocument, versions: dict[str, str] | None = None) -> dict[str, str]:
        """Edit id → why, for the sliders of ``doc`` drawn from the project's own copies (not
        installed here, or drawn as saved: :mod:`.edits.kept`)."""
        from .edits.kept import drawn_from_copies

        return drawn_from_copies(doc, self.model(doc.model).resources, versions)

    def for_saving(self, doc: EditDocument) -> EditDocument:
        """``doc`` as a save writes it: sliders stamped with their versions, their libraries kept."""
        from .edits.kept import with_copies
        from .edits.versions import stamped

        return with_copies(stamped(doc, self.library_versions(doc)), self.library_copies(doc))

    def stop_for(self, m: LoadedModel, size: int, adaptive: bool = False) -> int | None:
        """The ``stop_resolution`` for a quick frame of at most ``size`` px (None: no coarse frames).

        With ``adaptive``, the largest such stage whose measured render time fits
        ``preview_budget_s`` (never below ``MIN_PREVIEW_PX``): a fast GPU gets sharp previews, a
        busy laptop CPU small ones, and both stay fluid. Stages not measured yet are tried, and a
        stage found too slow is retried now and then (the machine may have been busy).
        """
        gen, scale = m.generator, m.stop_scale
        if scale is None:
            return None
        coarser = sorted(r for r in {l.resolution for l in gen.style_layout} if r * scale < gen.resolution)
        if not coarser:
            return None
        fit = [r for r in coarser if r * scale <= size] or coarser[:1]
        usable = [r for r in fit if r * scale >= min(self.MIN_PREVIEW_PX, size)] or fit[-1:]
        if not adaptive:
            return usable[-1]
        m.previews += 1
        chosen = usable[0]
        for r in reversed(usable):
            t = m.preview_times.get(r)
            if t is None or t <= self.preview_budget_s:
                chosen = r
                break
        # A stage once too slow is retried only when the current one is far inside the budget
        # (each stage costs 2–3× the one before, so the next may fit now that the machine got
        # faster), never while it struggles: a retry costs a slow frame.
        larger = [r for r in usable if r > chosen]
        fast = m.preview_times.get(chosen, 1e9) <= self.preview_budget_s / 3
        if larger and fast and m.previews % self.PREVIEW_RETRY == 0:
            return larger[0]
        return chosen

    def thumbnail_stop(self, m: LoadedModel, size: int) -> int | None:
        """The coarsest stage whose image is at least ``size`` px (downscaling keeps it crisp)."""
        gen, scale = m.generator, m.stop_scale
        if scale is None:
            return None
        enough = sorted(r for r in {l.resolution for l in gen.style_layout}
                        if size <= r * scale < gen.resolution)
        return enough[0] if enough else None

    @torch.no_grad()
    def render(self, doc: EditDocument, quality: str, preview_size: int) -> torch.Tensor:
        m = self.model(doc.model)
        stop = self.stop_for(m, preview_size, adaptive=True) if quality == "preview" else None
        renderer = m.renderers["before" if quality == "before" else quality]
        if quality == "before":
            doc = EditDocument(doc.model, doc.source)
        t0 = time.perf_counter()
        # the renderer uses ``precision`` for coarse display frames only: finals stay exact
        image = renderer.render(doc, stop_resolution=stop, display=True, precision=self.preview_precision)
        if stop is not None:
            dt = time.perf_counter() - t0
            old = m.preview_times.get(stop)
            m.preview_times[stop] = dt if old is None else 0.7 * old + 0.3 * dt
        return image

    @torch.no_grad()
    def thumbnails(self, model: str, seeds: tuple[int, ...], psi: float, size: int) -> list[np.ndarray]:
        m = self.model(model)
        gen = m.generator
        z = torch.cat([seed_to_z(s, gen.z_dim) for s in seeds]).to(gen.device)
        ws = gen.mapping(z, psi)
        stop = self.thumbnail_stop(m, size)
        img = gen.synthesize(gen.styles(ws), stop_resolution=stop, display=True).image
        img = torch.nn.functional.interpolate(img.float(), size=(size, size), mode="bilinear",
                                              antialias=True, align_corners=False)
        return [to_uint8(img[i : i + 1]) for i in range(img.shape[0])]


#: the name the task layer uses
Session = Engine
