""""Fit to this face" for the Regions panel: fitting jobs beside the editing, their results into the document.

A fit takes a second (quick, the default of new transfers) to seconds (full), so it is a :class:`~stylestudio.engine.tasks.regions.FitRegion` job (job
thread, Jobs panel, cancellable); the face stays editable with the region's unfitted look. The
finished fit goes into the transfer it was made for as its own undo step ("Fitted transfer to
this face"), and renders only use it. Fits made in this session are remembered, so going back to
a face and region fitted before takes its fit at once; an undo that took a fit out does not start
it again, nor does a fit the user cancelled (switching the fit on again does).
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any, Callable

from ...engine.document import EditDocument
from ...engine.edits.transfer import TransferEdit
from ...engine.regions.fit import FitSettings
from ...engine.regions.fitted import FittedQuery, face_key
from ...engine.tasks import FitRegion
from ...engine.tasks.regions import fitted_document
from ..context import EditorContext
from ..undo_commands import EditChangeCommand

FITS_KEPT = 16  #: fits remembered per session
FitKey = tuple[str, str]  #: (the transfer's fit inputs, the face key)


class FitJobs:
    """Starts, follows and lands the fitting jobs of one panel's transfer."""

    settings: FitSettings | None = None  #: None: each transfer's own preset (tests make it longer)

    def __init__(self, ctx: EditorContext, current: Callable[[EditDocument], TransferEdit | None],
                 ready: Callable[[EditDocument], bool]) -> None:
        self.ctx = ctx
        self._current = current  #: the document's transfer
        self._ready = ready  #: may a fit start for this document (its model's catalog is read)?
        self._fits: OrderedDict[FitKey, FittedQuery] = OrderedDict()
        self._not_again: set[FitKey] = set()  #: cancelled or failed: not restarted by themselves
        self.job: tuple[FitKey, int] | None = None  #: the running fit: its key and job id
        self._face: tuple[Any, str, str] | None = None  #: (source, model, face key) last worked out

    def face_key(self, doc: EditDocument) -> str:
        if self._face is None or self._face[0] is not doc.source or self._face[1] != doc.model:
            self._face = (doc.source, doc.model, face_key(doc.model, doc.source))
        return self._face[2]

    def with_known_fit(self, doc: EditDocument, edit: TransferEdit) -> TransferEdit:
        """``edit`` with the fit this session made for it on ``doc``'s face, when there is one."""
        if not edit.fit or not edit.has_region():
            return edit
        face = self.face_key(doc)
        known = self._fits.get((edit.fit_inputs, face))
        if known is None or edit.is_fitted_for(face):
            return edit
        return dataclasses.replace(edit, fitted=known)

    def allow_again(self) -> None:
        self._not_again.clear()

    def ensure(self, doc: EditDocument) -> None:
        """Start fitting the document's transfer when it asks for a fit it does not hold; a running
        fit the document no longer asks for (another face or region, the fit switched off) is
        cancelled."""
        if not self._ready(doc):
            return
        e = self._current(doc)
        key: FitKey | None = None
        if e is not None and e.fit and e.has_region():
            face = self.face_key(doc)
            if not e.is_fitted_for(face):
                key = (e.fit_inputs, face)
        if self.job is not None and self.job[0] != key:
            self.ctx.engine.cancel(self.job[1])
            self.job = None
        if key is None or self.job is not None or key in self._fits or key in self._not_again:
            return
        job = self.ctx.engine.submit_task(FitRegion.of(doc, e, self.settings),
                                          on_done=lambda fitted: self._landed(key, fitted),
                                          on_error=lambda message, cancelled: self._failed(key, message, cancelled))
        self.job = (key, job)
        self.ctx.status("Fitting the transfer to this face and reference in the background (Jobs panel); "
                        "editing goes on with the unfitted look meanwhile", 8000)

    def _landed(self, key: FitKey, fitted: FittedQuery) -> None:
        """Put a finished fit into the transfer it was made for, as one undo step."""
        if self.job is not None and self.job[0] == key:
            self.job = None
        self._fits[key] = fitted
        while len(self._fits) > FITS_KEPT:
            self._fits.popitem(last=False)
        doc = self.ctx.doc
        after = fitted_document(doc, fitted)
        if after is not None:
            self.ctx.push(EditChangeCommand(self.ctx.holder, after, "Fitted transfer to this face", before=doc))
            self.ctx.status("The transfer is fitted to this face", 4000)

    def _failed(self, key: FitKey, message: str, cancelled: bool) -> None:
        if self.job is not None and self.job[0] == key:
            self.job = None
            self._not_again.add(key)
            if not cancelled:
                self.ctx.report_error("Fitting the transfer failed", message)
