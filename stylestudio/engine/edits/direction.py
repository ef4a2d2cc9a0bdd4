"""Moving along a latent direction (a slider): SeFa factors, attribute directions, found ones."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from torch import Tensor

from ..document import (Edit, EditContext, as_bool, as_names, as_number, as_text, as_version, new_edit_id,
                        register_edit)
from ..directions.library import check_library_name

#: Slider units a project may hold: sliders span ±3 (one unit is one standard deviation of the
#: model's faces), and ±100 is already far outside any face; beyond it a value is damage.
MAX_AMOUNT = 100.0


@register_edit
@dataclass(frozen=True)
class DirectionEdit(Edit):
    """``amount`` slider units along direction ``name`` of library ``library``.

    The W+ offset is turned into a StyleSpace offset through the generator's affines, so the edit
    composes with every other (style-space) edit in the document's order. ``keep`` names the
    attributes to hold still (conditional editing).
    """

    kind: ClassVar[str] = "direction"
    field_checks: ClassVar[dict[str, Callable[[Any, str], Any]]] = {
        "library": lambda v, w: check_library_name(v, w),
        "name": lambda v, w: as_text(v, w, 200),
        "amount": lambda v, w: as_number(v, w, -MAX_AMOUNT, MAX_AMOUNT),
        "keep": as_names,
        "id": lambda v, w: as_text(v, w, 200),
        "enabled": as_bool,
        "version": as_version,
    }
    library: str = "sefa"
    name: str = "factor1"
    amount: float = 0.0
    keep: tuple[str, ...] = ()
    id: str = field(default_factory=new_edit_id)
    enabled: bool = True
    #: fingerprint of the library entry when the project was saved ("": not known); not part of the
    #: edit's value (:mod:`.versions`)
    version: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_library_name(self.library)
        as_number(self.amount, "amount", -MAX_AMOUNT, MAX_AMOUNT)

    def apply(self, ctx: EditContext, styles: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.enabled or self.amount == 0.0:
            return styles
        gen = ctx.generator
        lib = ctx.library_for(self)
        delta = lib.delta(self.name, self.amount, gen.num_ws, self.keep).to(ctx.source_ws)
        base = ctx.source_ws
        moved = gen.styles(base + delta[None])
        ref = ctx.base_styles
        return {k: v + (moved[k] - ref[k]) for k, v in styles.items()}

    def describe(self) -> str:
        keep = f", keeping {', '.join(self.keep)}" if self.keep else ""
        return f"{self.name} {self.amount:+.2f}{keep}"
