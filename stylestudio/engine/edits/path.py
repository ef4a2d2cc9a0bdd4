"""Moving along a trained text path (ContraCLIP): a curved, face-dependent slider.

Unlike a direction, the step depends on where the face is, so the edit follows the path from the
document's source latent in small steps (:func:`~stylestudio.engine.text.contraclip.follow`); the
result is a pure function of (source, library, name, amount), hence reproducible and undoable.
The W+ change is turned into a StyleSpace change, so it composes with every other edit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from torch import Tensor

from ..document import Edit, EditContext, as_bool, as_number, as_text, as_version, new_edit_id, register_edit
from ..resources import check_resource_name
from .direction import MAX_AMOUNT


@register_edit
@dataclass(frozen=True)
class PathEdit(Edit):
    """``amount`` slider units along text path ``name`` of library ``library``."""

    kind: ClassVar[str] = "textpath"
    field_checks: ClassVar[dict[str, Callable[[Any, str], Any]]] = {
        "library": lambda v, w: check_resource_name(v, "text path library", w),
        "name": lambda v, w: as_text(v, w, 64),
        "amount": lambda v, w: as_number(v, w, -MAX_AMOUNT, MAX_AMOUNT),
        "id": lambda v, w: as_text(v, w, 200),
        "enabled": as_bool,
        "version": as_version,
    }
    library: str = "textpaths"
    name: str = ""
    amount: float = 0.0
    id: str = field(default_factory=new_edit_id)
    enabled: bool = True
    #: fingerprint of the library entry when the project was saved ("": not known); not part of the
    #: edit's value (:mod:`.versions`)
    version: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_resource_name(self.library, "text path library")
        as_number(self.amount, "amount", -MAX_AMOUNT, MAX_AMOUNT)

    def apply(self, ctx: EditContext, styles: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.enabled or self.amount == 0.0:
            return styles
        gen = ctx.generator
        lib = ctx.library_for(self)  # (which loads the text path library module when needed)
        moved = gen.styles(lib.move(self.name, ctx.source_ws, self.amount, gen.w_avg))
        ref = ctx.base_styles
        return {k: v + (moved[k] - ref[k]) for k, v in styles.items()}

    def describe(self) -> str:
        return f"{self.name.replace('_', ' ')} {self.amount:+.2f} (text path)"
