"""A recipe: the edits of a saved document, applied to any other face.

The editor's document holds a face *and* its edits; a batch keeps the edits (sliders, text and
discovered directions, regional transfers with their reference and mask), the attribute
switches that shaped them and the model they were made for, and drops the face. A recipe's
edits are model-specific (a direction lives in one model's W), so every face of the batch is
inverted into the recipe's model.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ...errors import InputError
from ..document import AttributeSettings, Edit, EditDocument, ExportSettings, KeptLibrary, SeedSource, Source


@dataclass(frozen=True, eq=False)
class Recipe:
    """The part of a document that a batch applies to every face."""

    model: str
    edits: tuple[Edit, ...]
    attributes: AttributeSettings = AttributeSettings()
    export: ExportSettings = ExportSettings()
    name: str = "recipe"
    #: the project's copies of its sliders' libraries (engine/edits/kept.py): every face draws with them
    libraries: tuple[KeptLibrary, ...] = ()

    @classmethod
    def from_document(cls, doc: EditDocument, edit_ids: Iterable[str] | None = None, name: str | None = None
                      ) -> "Recipe":
        """The document's enabled edits (only those in ``edit_ids`` when given), in document order."""
        chosen = None if edit_ids is None else set(edit_ids)
        if chosen is not None:
            unknown = chosen - {e.id for e in doc.edits}
            if unknown:
                raise InputError(f"the recipe has no edit {sorted(unknown)[0]!r}")
        edits = tuple(e for e in doc.edits if e.enabled and (chosen is None or e.id in chosen))
        return cls(model=doc.model, edits=edits, attributes=doc.attributes, export=doc.export,
                   name=name or doc.title, libraries=doc.libraries)

    @classmethod
    def load(cls, path: Path, edit_ids: Iterable[str] | None = None) -> "Recipe":
        """The recipe of project ``path``; one line naming the file when it cannot be one."""
        from ..project import load_project

        path = Path(path)
        doc = load_project(path)
        recipe = cls.from_document(doc, edit_ids, name=path.stem)
        if not recipe.model:
            raise InputError(f"{path.name}: the project names no model")
        if not recipe.edits:
            raise InputError(f"{path.name}: the project has no (enabled) edits to apply")
        return recipe

    def apply(self, source: Source, title: str = "") -> EditDocument:
        """A document of ``source`` with this recipe's edits, switches and export settings."""
        return EditDocument(model=self.model, source=source, edits=self.edits, export=self.export,
                            title=title or source.label(), attributes=self.attributes, libraries=self.libraries)

    def digest(self) -> str:
        """Changes when anything that shapes the result changes (the resume check compares it)."""
        body, arrays = self.apply(SeedSource()).to_json()
        body.pop("title", None)
        # A library version stamp records what was drawn, it does not shape it (edits/versions.py):
        # re-saving a recipe must not redo its photos. The libraries the recipe keeps do shape it
        # (edits/kept.py: its sliders draw with them); their files are written byte-for-byte alike.
        for edit in body["edits"]:
            edit.pop("version", None)
        h = hashlib.sha256(json.dumps(body, sort_keys=True).encode())
        for key in sorted(arrays):
            if key.startswith("source."):
                continue
            h.update(key.encode())
            h.update(np.ascontiguousarray(arrays[key]).tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> list[str]:
        """One line per edit (for logs and the dialog)."""
        return [e.describe() for e in self.edits]


def check_recipe(session, recipe: Recipe, label: str) -> None:
    """Apply the recipe once to a generated face, so a recipe that cannot work anywhere (a missing
    catalog or direction library, another model's edits) is one error before the batch, not one
    failure per photo."""
    from ..document import SeedSource

    renderer = session.renderer(recipe.model, "final")
    try:
        renderer.document_styles(recipe.apply(SeedSource(seed=0)))
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
