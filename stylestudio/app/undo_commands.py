"""The open document and the undo commands that move it between immutable versions.

The editor holds exactly one :class:`~stylestudio.engine.document.EditDocument` at a time in a
:class:`DocumentHolder`. Every user action is a :class:`QUndoCommand` subclass (one class per
action) that stores the document *before* and *after*; ``redo``/``undo`` just put one or the
other back. Because documents are immutable values, undo is exact by construction and never
needs to "reverse" an edit.

A slider drag is one undo step: every value change of a drag pushes a :class:`SliderCommand`
with the same edit id and drag token, and ``mergeWith`` folds it into the previous one. A drag
that ends where it began makes its command obsolete, so it leaves no empty step behind.
"""
from __future__ import annotations

import dataclasses
import itertools

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand

from ..engine.document import AttributeSettings, EditDocument, ExportSettings, SeedSource
from ..engine.edits.direction import DirectionEdit


def history_value(value: float, signed: bool) -> str:
    """A value in the History: an offset (a slider amount) with its sign, an absolute value without."""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


class DocumentHolder(QObject):
    """The current document. ``changed(doc, interactive)``: interactive = mid-drag (preview)."""

    changed = Signal(object, bool)

    def __init__(self, doc: EditDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._doc = doc

    @property
    def doc(self) -> EditDocument:
        return self._doc

    def set(self, doc: EditDocument, interactive: bool = False) -> None:
        self._doc = doc
        self.changed.emit(doc, interactive)


class DocumentCommand(QUndoCommand):
    """Base: swap between two documents. Subclasses only name the action (and maybe merge)."""

    def __init__(self, holder: DocumentHolder, before: EditDocument, after: EditDocument, text: str) -> None:
        super().__init__(text)
        self.holder = holder
        self.before = before
        self.after = after
        self.interactive = False  #: the first redo (on push) of a drag step renders a preview

    def redo(self) -> None:
        self.holder.set(self.after, self.interactive)
        self.interactive = False

    def undo(self) -> None:
        self.holder.set(self.before)


class PickFaceCommand(DocumentCommand):
    """A new face from the browser, the seed box, "random" or next/previous seed."""

    def __init__(self, holder: DocumentHolder, seed: int, psi: float | None = None) -> None:
        before = holder.doc
        src = before.source
        if psi is None:
            psi = src.psi if isinstance(src, SeedSource) else 0.7
        super().__init__(holder, before, before.with_source(SeedSource(seed=int(seed), psi=float(psi))),
                         f"Face: seed {seed}")


class SetTruncationCommand(DocumentCommand):
    """Change ψ of a seed face (how close to the average face it is); one drag = one step."""

    ID = 2001

    def __init__(self, holder: DocumentHolder, psi: float, drag_token: int = 0, interactive: bool = False) -> None:
        before = holder.doc
        src = before.source
        if not isinstance(src, SeedSource):
            raise ValueError("truncation applies to generated (seed) faces only")
        after = before.with_source(SeedSource(seed=src.seed, psi=round(float(psi), 4), cutoff=src.cutoff))
        super().__init__(holder, before, after, f"Truncation ψ {history_value(psi, False)}")
        self.drag_token = drag_token
        self.interactive = interactive

    def id(self) -> int:
        return self.ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetTruncationCommand) or not self.drag_token \
                or other.drag_token != self.drag_token:
            return False
        self.after = other.after
        self.setText(other.text())
        self.setObsolete(self.after.source == self.before.source)
        return True


_drag_tokens = itertools.count(1)


def new_drag_token() -> int:
    """One token per user interaction with a slider (press … release, or one key press)."""
    return next(_drag_tokens)


class SliderCommand(DocumentCommand):
    """A slider value: an edit replaced (or added) in the document, merged over one drag."""

    ID = 1001

    def __init__(self, holder: DocumentHolder, after: EditDocument, edit_id: str, label: str,
                 value: float, drag_token: int, interactive: bool = False,
                 before: EditDocument | None = None, signed: bool | None = None) -> None:
        before = before if before is not None else holder.doc
        if signed is None:  # direction amounts are offsets from the face; anything else (strength) is absolute
            edit = after.edit(edit_id) or before.edit(edit_id)
            signed = edit is None or isinstance(edit, DirectionEdit)
        super().__init__(holder, before, after, f"{label} {history_value(value, signed)}")
        self.edit_id = edit_id
        self.drag_token = drag_token
        self.interactive = interactive

    def id(self) -> int:
        return self.ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SliderCommand):
            return False
        if other.edit_id != self.edit_id or other.drag_token != self.drag_token:
            return False
        self.after = other.after
        self.setText(other.text())
        self.setObsolete(self.after.edit(self.edit_id) == self.before.edit(self.edit_id))
        return True


class EditChangeCommand(DocumentCommand):
    """One discrete change to an edit: a brush stroke, a region or reference pick, a setting.

    Never merged: each stroke or pick is its own step, so undo walks back one stroke at a time.
    """

    def __init__(self, holder: DocumentHolder, after: EditDocument, text: str,
                 before: EditDocument | None = None) -> None:
        super().__init__(holder, before if before is not None else holder.doc, after, text)


class ResetEditCommand(DocumentCommand):
    """Remove one edit (a slider's reset button / double-click)."""

    def __init__(self, holder: DocumentHolder, edit_id: str, label: str) -> None:
        before = holder.doc
        super().__init__(holder, before, before.without_edit(edit_id), f"Reset {label}")


class ResetAllEditsCommand(DocumentCommand):
    """Remove every edit of the document, or of one direction library."""

    def __init__(self, holder: DocumentHolder, library: str | None = None, label: str = "all edits") -> None:
        before = holder.doc
        keep = tuple(e for e in before.edits
                     if library is not None and getattr(e, "library", None) != library)
        after = dataclasses.replace(before, edits=keep)  # the rest of the document (switches, export) stays
        super().__init__(holder, before, after, f"Reset {label}")


class ToggleEditCommand(DocumentCommand):
    """Bypass an edit without losing its value (compare with and without it)."""

    def __init__(self, holder: DocumentHolder, edit_id: str, enabled: bool, label: str) -> None:
        before = holder.doc
        edit = before.edit(edit_id)
        if edit is None:
            raise KeyError(edit_id)
        after = before.with_edit(dataclasses.replace(edit, enabled=enabled))
        super().__init__(holder, before, after, f"{'Enable' if enabled else 'Bypass'} {label}")


class SwitchModelCommand(DocumentCommand):
    """Render the same recipe with another model (source and edits are kept)."""

    def __init__(self, holder: DocumentHolder, model: str) -> None:
        before = holder.doc
        super().__init__(holder, before, dataclasses.replace(before, model=model), f"Model: {model}")


class SetExportSettingsCommand(DocumentCommand):
    """Export format/size/quality are part of the recipe, so changing them is undoable."""

    def __init__(self, holder: DocumentHolder, export: ExportSettings) -> None:
        before = holder.doc
        super().__init__(holder, before, dataclasses.replace(before, export=export), "Export settings")


class KeepSwitchCommand(DocumentCommand):
    """Keep others or a pin changed (the Attributes panel).

    The switches are document state (:class:`~stylestudio.engine.document.AttributeSettings`), so
    the switches and the attribute edits' ``keep`` they rewrote move together on undo/redo, and
    the panel's widgets simply show the document.
    """

    def __init__(self, holder: DocumentHolder, after: EditDocument, text: str,
                 before: EditDocument | None = None) -> None:
        super().__init__(holder, before if before is not None else holder.doc, after, text)

    @property
    def settings(self) -> tuple[AttributeSettings, AttributeSettings]:
        return self.before.attributes, self.after.attributes


class ResetLibrariesCommand(DocumentCommand):
    """Remove every edit of the given direction libraries (the Attributes panel's Reset)."""

    def __init__(self, holder: DocumentHolder, libraries: tuple[str, ...], label: str) -> None:
        before = holder.doc
        after = dataclasses.replace(before, edits=tuple(e for e in before.edits
                                                        if getattr(e, "library", None) not in libraries))
        super().__init__(holder, before, after, f"Reset {label}")
