"""Region transfer tasks: fit a transfer to one face (seconds on a CPU, so a job, not a render)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..document import EditDocument, Source
from ..edits.transfer import TransferEdit
from ..progress import Cancel, Progress, checking, scaled
from ..regions.fit import FitSettings
from ..regions.fitted import FittedQuery, face_key
from . import task


@dataclass(frozen=True)
class FitRegion:
    """Fit ``transfer`` (a :class:`TransferEdit`) to the face ``source`` of ``model``.

    The result, a :class:`~stylestudio.engine.regions.fitted.FittedQuery`, goes into the transfer
    (:meth:`fitted_document`); renders then only use it.
    """

    model: str
    source: Source
    transfer: TransferEdit
    settings: FitSettings | None = None  #: None: the transfer's own preset (``TransferEdit.fit_preset``)
    lane: ClassVar[str] = "jobs"

    @classmethod
    def of(cls, doc: EditDocument, transfer: TransferEdit, settings: FitSettings | None = None) -> "FitRegion":
        """The fit ``transfer`` of ``doc`` needs."""
        return cls(doc.model, doc.source, transfer, settings)

    @property
    def face(self) -> str:
        return face_key(self.model, self.source)

    def title(self) -> str:
        t = self.transfer
        what = "painted region" if t.mask is not None else " + ".join(t.region) or "region"
        return f"Fit {what} to this face"

    def describe_result(self, result: FittedQuery) -> str:
        return f"fitted {sum(int((v > 0).sum()) for v in result.q.values())} channels"


def fitted_document(doc: EditDocument, fitted: FittedQuery) -> EditDocument | None:
    """``doc`` with ``fitted`` in the transfer it was made for; None when no transfer of ``doc``
    wants it any more (the region, reference or face changed, or fitting was switched off)."""
    face = face_key(doc.model, doc.source)
    if fitted.face_key != face:
        return None
    for e in doc.edits:
        if isinstance(e, TransferEdit) and e.fit and e.fit_inputs == fitted.inputs and not e.is_fitted_for(face):
            import dataclasses

            return doc.with_edit(dataclasses.replace(e, fitted=fitted))
    return None


def fit_transfers(session: Any, doc: EditDocument, progress: Progress | None = None, cancel: Cancel = None,
                  settings: FitSettings | None = None) -> EditDocument:
    """``doc`` with every transfer that asks to be fitted fitted to its face (one :class:`FitRegion`
    each, with the transfer's own preset unless ``settings`` are given): for the CLI, and for jobs that render a document nobody fitted yet (a recipe applied to
    new faces), since renders only use fits."""
    from . import run

    todo = [e for e in doc.edits if isinstance(e, TransferEdit) and e.enabled and e.fit and e.has_region()
            and not e.is_fitted_for(face_key(doc.model, doc.source))]
    for i, e in enumerate(todo):
        fitted = run(session, FitRegion.of(doc, e, settings), scaled(progress, i / len(todo), (i + 1) / len(todo)),
                     cancel)
        doc = fitted_document(doc, fitted) or doc
    return doc


@task(FitRegion)
def fit_region(session: Any, req: FitRegion, progress: Progress, cancel: Cancel) -> FittedQuery:
    progress("Loading the model", -1.0)
    r = session.model(req.model, progress=checking(progress, cancel)).renderers["before"]
    cat = r.resources.get("catalog", req.transfer.catalog)
    with torch.no_grad():
        base = r.styles_of(r.latent(req.source))
        reference = r.styles_of(r.latent(req.transfer.reference))
    return req.transfer.fitted_to(r.generator, cat, base, reference, req.face, req.settings, progress, cancel)
