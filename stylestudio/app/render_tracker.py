"""Render bookkeeping: which frame was asked for last, which is on screen, and the "before" images.

Every document change becomes a render request with a rising sequence number (a preview while
an interaction is in progress, the final frame otherwise). Frames come back in any order from
the render thread; the stale-frame guard in :meth:`RenderTracker.on_rendered` never lets an older
request's frame replace a newer one on the canvas, nor a preview replace the final frame of the
same request.

Final frames also say which version of each slider's library entry they were drawn with and which
library copies a save keeps: the tracker keeps both for saving (:meth:`stamped`) and, for a project
just opened, compares the versions with the project's own stamps once and says which sliders are
drawn from the project's copies (:meth:`compare_versions`); later, it says when a slider of the
open picture lost its installed library (deleted while open) and is drawn from a copy.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel

from ..engine.document import EditDocument, KeptLibrary
from ..engine.edits.kept import (ENTRY_MISSING, NOT_INSTALLED, copies_messages, no_longer_installed, slider_edits,
                                 with_copies)
from ..engine.edits.versions import changed_entries, changed_message, stamped
from .canvas import Canvas
from .engine_client import EngineClient
from .undo_commands import DocumentHolder
from .work_items import BeforeImage, RenderResult

BEFORE_IMAGES = 32  #: unedited faces kept for the before/after views


def has_edits(doc: EditDocument) -> bool:
    return any(e.enabled for e in doc.edits)


class RenderTracker(QObject):
    """Asks for frames, shows the ones that are still wanted, keeps the "before" images."""

    def __init__(self, engine: EngineClient, holder: DocumentHolder, canvas: Canvas, render_label: QLabel,
                 report_error: Callable[[str, str], None], parent: QObject | None = None,
                 notify: Callable[[str], None] = lambda _message: None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.holder = holder
        self.canvas = canvas
        self.render_label = render_label
        self.report_error = report_error
        self.notify = notify  #: a line for the status bar (news, not an error)
        self.latest_seq = 0  #: the newest request
        self._latest_doc: EditDocument | None = None
        self._latest_quality = ""
        self._shown_seq = 0  #: the request whose frame is on screen
        self._shown_quality = ""
        self._shown_source: tuple | None = None  #: (model, source key) on screen
        self.last_result: RenderResult | None = None
        self._before: OrderedDict[tuple, QImage] = OrderedDict()
        self.versions: dict[str, str] = {}  #: edit id → library entry version of the last final frames
        self.copies: tuple[KeptLibrary, ...] = ()  #: the library copies of the last final frame
        self.from_copies: dict[str, str] = {}  #: its sliders drawn from the project's copies (id → why)
        self._compare_for: str | None = None  #: the name of a project whose stamps await a final frame
        engine.rendered.connect(self.on_rendered)
        engine.render_failed.connect(self.on_render_failed)
        engine.before_ready.connect(self.on_before_ready)

    def request(self, quality: str = "final") -> int:
        """Ask for a frame of the current document; returns its sequence number."""
        doc = self.holder.doc
        if quality == "final" and self._latest_doc is doc and self._latest_quality == "final":
            return self.latest_seq  # already asked for exactly this
        progressive = quality == "final" and (doc.model, doc.source.key()) != self._shown_source
        self.latest_seq = self.engine.render(doc, quality, progressive)
        self._latest_doc = doc
        self._latest_quality = quality
        return self.latest_seq

    def rerender(self) -> None:
        """Draw the document again even if unchanged (the device changed, a photo dialog ended)."""
        self._latest_doc = None
        self._shown_source = None
        self.request("final")

    def redraw(self) -> None:
        """Draw the same document again at once (a library its sliders read changed), without the
        coarse first frame of :meth:`rerender`."""
        self._latest_doc = None
        self.request("final")

    def frame_is_current(self, final: bool = True) -> bool:
        """Is the frame on screen the latest request (and final, if asked)?"""
        r = self.last_result
        return (r is not None and r.seq == self.latest_seq and self.canvas.frame_seq == r.seq
                and (not final or r.quality == "final"))

    def on_doc_changed(self, doc: EditDocument, interactive: bool) -> None:
        self.update_before(doc)
        self.request("preview" if interactive else "final")

    def compare_versions(self, name: str) -> None:
        """Once the opened document's first final frame is drawn, tell the user which of its sliders'
        library entries are no longer those the project was saved with."""
        self._compare_for = name
        self.versions = {}
        self.copies = ()
        self.from_copies = {}

    def stamped(self, doc: EditDocument) -> EditDocument:
        """``doc`` as a save writes it: slider edits stamped with the versions they were last drawn
        with, and keeping the copies of the libraries they were drawn from."""
        return with_copies(stamped(doc, self.versions), self.copies)

    def on_rendered(self, r: RenderResult) -> None:
        if r.quality == "final":
            self.versions.update(r.versions)
            self.copies = r.copies
            lost = {i for i, why in r.from_copies.items() if why in (NOT_INSTALLED, ENTRY_MISSING)}
            lost -= {i for i, why in self.from_copies.items() if why in (NOT_INSTALLED, ENTRY_MISSING)}
            self.from_copies = r.from_copies
            if self._compare_for is not None:
                if r.seq == self.latest_seq:
                    name, self._compare_for = self._compare_for, None
                    phrases = changed_entries(self.holder.doc, r.versions)
                    if phrases:
                        self.report_error("Sliders changed since the project was saved", changed_message(name, phrases))
                    for line in copies_messages(name, self.holder.doc, r.from_copies):
                        self.report_error("Sliders drawn from the project's copies", line)
            elif lost and any(e.id in lost for e in slider_edits(self.holder.doc)):
                self.notify(no_longer_installed(self.holder.doc, lost))  # removed while open: a note, not an error
        if r.seq < self._shown_seq or (r.seq == self._shown_seq and self._shown_quality == "final"):
            return  # an older request finished late: never show it over a newer frame
        self._shown_seq, self._shown_quality = r.seq, r.quality
        self._shown_source = (r.model, r.source_key)
        self.last_result = r
        if r.quality == "final" and not r.has_edits:
            self._remember_before((r.model, r.source_key), r.image)
        self.canvas.set_frame(r.image, r.resolution, r.seq, r.quality)
        if r.quality == "final":
            self.render_label.setText(f"{r.image.width()} × {r.image.height()} · {r.render_s:.2f} s")
        else:
            self.render_label.setText(f"Preview {r.image.width()} px · {r.render_s * 1000:.0f} ms")

    def on_render_failed(self, seq: int, message: str) -> None:
        if seq != -1 and seq < self._shown_seq:
            return
        if self.last_result is None:
            self.canvas.clear("Could not draw the face — see the message in the status bar.")
        self.report_error("Rendering failed", message)

    def _remember_before(self, key: tuple, image: QImage) -> None:
        self._before[key] = image
        self._before.move_to_end(key)
        while len(self._before) > BEFORE_IMAGES:
            self._before.popitem(last=False)
        self.update_before(self.holder.doc)

    def on_before_ready(self, b: BeforeImage) -> None:
        self._remember_before((b.model, b.source_key), b.image)

    def update_before(self, doc: EditDocument) -> None:
        if not has_edits(doc):
            self.canvas.set_before(None)  # before == after
            return
        self.canvas.set_before(self._before.get((doc.model, doc.source.key())))
