"""The Regions panel: take one region's look from a reference face (regional transfer).

The panel edits one :class:`~stylestudio.engine.edits.transfer.TransferEdit` of the document
(id :data:`EDIT_ID`, or the first transfer edit a loaded project has). Every change is an undo
step: a reference or region pick, a brush stroke, clear/invert, a setting
(:class:`~..undo_commands.EditChangeCommand`), and a strength drag, merged into one step like
any slider. Because the edit lives in the document it is saved with the project.

The panel runs no engine code: it builds :mod:`stylestudio.engine.tasks` requests. Building a
catalog and fitting a transfer to the face ("Fit to this face", :class:`FitRegion`) are long,
cancellable jobs with progress in the Jobs panel; they run in the job thread beside the renders,
so the face stays editable meanwhile (with the region's unfitted look until the fit lands in the
document as its own undo step). A new transfer is fitted by default with the quick preset
(``regions.fit.NEW_TRANSFER_PRESET``); the full fit, or none, is one click away. A transfer opened
from a project keeps the fit it was saved with (none, for one saved unfitted). Reading the catalog, the reference's thumbnail and the target's
cluster map (for showing a named region on the canvas) are quick render-thread tasks.

A picked named region is shown on the canvas like a painted one (its clusters on this face's
own cluster map); painting over it starts from that shape, so a named region can be refined
with the brush.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QGridLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QScrollArea, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ...engine.document import EditDocument, SeedSource, Source
from ...engine.edits.transfer import MAX_STRENGTH, TransferEdit, query_fields
from ...engine.regions.catalog import DEFAULT_K
from ...engine.regions.fit import NEW_TRANSFER_PRESET
from ...engine.regions.masks import MASK_MODES
from ...engine.regions.queries import QUERY_KINDS
from ...engine.tasks import BuildCatalog, CatalogInfo, ReferenceThumbnail, RegionMap
from ...errors import StyleStudioError
from ..context import EditorContext
from ..modal import modal
from ..mask_painter import MASK_RES, to_document_mask, to_mask_array
from ..undo_commands import EditChangeCommand, new_drag_token
from ..qimage_arrays import qimage_from_array
from . import PanelSpec, register_panel
from .catalog_dialog import BuildCatalogDialog
from .region_brush import RegionBrush
from .region_fit import FitJobs
from .sliders import SliderRow

EDIT_ID = "regions"
THUMB_PX = 56
REGION_ROLE = Qt.ItemDataRole.UserRole + 1
CLUSTER_ROLE = Qt.ItemDataRole.UserRole + 2  #: True on an unnamed cluster's item
#: the fit presets the panel offers (``regions.fit.PRESETS``), as the CLI's ``--fit quick|full`` names them
FIT_CHOICES = (("quick", "Quick", "About a second per new reference or region on a CPU; more local than no fit\n"
                                  "for every face part (the default of new transfers)"),
               ("full", "Full", "Seconds per new reference or region on a CPU: a stronger change that stays more\n"
                                "inside the region; smooth regions (skin, cheeks, forehead) take the reference's\n"
                                "colouring"))


# ---------------------------------------------------------------------------------------------
# the strength slider


@dataclasses.dataclass(frozen=True)
class StrengthBinding:
    """The transfer's strength as a :class:`~.sliders.SliderBinding` (merged drags, previews)."""

    panel: "RegionsPanel"
    key: str = EDIT_ID
    label: str = "Strength"
    minimum: float = 0.0
    maximum: float = MAX_STRENGTH
    tooltip: str = "How far the region moves towards the reference (1 = the reference's look)"

    def edit(self, doc: EditDocument) -> TransferEdit | None:
        return self.panel.current(doc)

    def value(self, doc: EditDocument) -> float:
        e = self.edit(doc)
        return float(e.strength) if e is not None else 1.0

    def apply(self, doc: EditDocument, value: float) -> EditDocument:
        return self.panel.updated(doc, strength=round(float(value), 4))


class StrengthRow(SliderRow):
    """Reset means "back to 1" here, not "remove the transfer" (the mask is worth keeping)."""

    def reset(self) -> None:
        self.commit(1.0, new_drag_token(), interactive=False)


# ---------------------------------------------------------------------------------------------
# the panel


def _section(title: str) -> QLabel:
    label = QLabel(title)
    label.setObjectName("SectionTitle")
    f = label.font()
    f.setBold(True)
    label.setFont(f)
    return label


class RegionsPanel(QWidget):
    catalog_changed = Signal()  #: the region list was (re)built, or the model turned out to have no catalog

    def __init__(self, ctx: EditorContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.catalog: dict[str, Any] | None = None
        self.catalog_missing = False
        self.build_job = 0
        #: "Fit to this face": the fitting jobs and the fits they made
        self.fits = FitJobs(ctx, self.current, lambda doc: self.catalog is not None and doc.model == self._model)
        self._model = ""
        self._syncing = False
        self._shown_edit: TransferEdit | None = None  #: the transfer the widgets show
        self._behind = False  #: a drag step of another slider was not shown yet
        self._thumb_key: tuple | None = None
        self._region_key: tuple | None = None

        # reference
        self.ref_thumb = QLabel()
        self.ref_thumb.setFixedSize(THUMB_PX, THUMB_PX)
        self.ref_thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.ref_thumb.setFrameShape(QLabel.Shape.StyledPanel)
        self.ref_seed = QSpinBox()
        self.ref_seed.setRange(0, 2**31 - 1)
        self.ref_seed.setValue(1)
        self.ref_seed.setKeyboardTracking(False)
        self.ref_seed.setPrefix("seed ")
        self.ref_seed.setToolTip("The reference face: the region takes its look from this seed")
        self.ref_seed.setAccessibleName("Reference seed")
        self.ref_from_project = QPushButton("From project…")
        self.ref_from_project.setToolTip("Use the face of a saved project as the reference")
        self.ref_label = QLabel()
        self.ref_label.setObjectName("Hint")
        self.ref_label.setWordWrap(True)
        ref = QGridLayout()
        ref.addWidget(self.ref_thumb, 0, 0, 3, 1)
        ref.addWidget(self.ref_seed, 0, 1)
        ref.addWidget(self.ref_from_project, 1, 1)
        ref.addWidget(self.ref_label, 2, 1)
        ref.setColumnStretch(1, 1)

        # region
        self.region_list = QListWidget()
        self.region_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.region_list.setToolTip("Pick one or more regions (Ctrl-click to combine), or paint one")
        self.region_list.setMaximumHeight(150)
        #: the catalog's unnamed clusters ("c7 · 5 % of the picture") are for experts: hidden until asked
        self.clusters_toggle = QToolButton()
        self.clusters_toggle.setText("Advanced: unnamed clusters")
        self.clusters_toggle.setCheckable(True)
        self.clusters_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.clusters_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.clusters_toggle.setAutoRaise(True)
        self.clusters_toggle.setToolTip("Also list the catalog's unnamed clusters (parts of the picture the "
                                        "catalog found but nobody named)")
        self.clusters_toggle.hide()
        self.show_region_box = QCheckBox("Show region")
        self.show_region_box.setChecked(False)
        self.show_region_box.setToolTip("Outline the picked or painted region on the face (the brush shows it "
                                        "while painting)")
        self.catalog_hint = QLabel("Waiting for the model…")
        self.catalog_hint.setObjectName("Hint")
        self.catalog_hint.setWordWrap(True)
        self.build_button = QPushButton("Build catalog…")
        self.build_button.setToolTip("Find this model's semantic regions (a long job; it can be cancelled)")
        self.build_button.hide()

        # brush
        self.brush = RegionBrush(ctx, self)
        b = self.brush  # its parts under the panel's names
        self.painter, self.paint_action, self.eraser_action = b.painter, b.paint_action, b.eraser_action
        self.paint_button, self.eraser_button, self.clear_button, self.invert_button = \
            b.paint_button, b.eraser_button, b.clear_button, b.invert_button
        self.size_slider, self.hardness_slider = b.size_slider, b.hardness_slider
        self.overlay_box = self.show_region_box  #: the old name of the "Show region" switch

        # strength
        self.strength = StrengthRow(ctx, StrengthBinding(self))

        self.fit_box = QCheckBox("Fit to this face")
        self.fit_box.setToolTip("Fit the transfer to this face and this reference instead of using the region's\n"
                                "averaged settings, so it stays more inside the region (on for new transfers).\n"
                                "The fit runs in the background (Jobs panel) and lands as its own undo step;\n"
                                "the unfitted transfer is shown meanwhile.")
        self.fit_preset_box = QComboBox()
        for name, label, tip in FIT_CHOICES:
            self.fit_preset_box.addItem(label, name)
            self.fit_preset_box.setItemData(self.fit_preset_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.fit_preset_box.setToolTip("Quick: about a second, the default; Full: seconds, the most local")
        self.fit_preset_box.setAccessibleName("Fit")

        # advanced
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced = QWidget()
        self.query_box = QComboBox()
        self.query_box.addItems(list(QUERY_KINDS))
        self.query_box.setToolTip("Picking a named region loads the settings measured to be the most local for it.\n"
                                  "effect: the channels whose effect on the picture lies mostly (share τ) in the region; "
                                  "sequential: the most local channels until the leak budget ε is spent; "
                                  "simple: every channel in proportion to its locality (gain λ)")
        self.lam_box = self._spin(0.0, 100.0, 0.5, "λ: gain of the simple query")
        self.eps_box = self._spin(0.0, 50.0, 0.1, "ε: budget of out-of-region share (sequential query)")
        self.rho_box = self._spin(0.0, 1.0, 0.05, "ρ: a channel must act at least this much inside the region")
        self.tau_box = self._spin(0.0, 1.0, 0.05, "τ: share of a channel's effect on the picture that must lie "
                                                  "inside the region (effect query)")
        self.mask_mode_box = QComboBox()
        self.mask_mode_box.addItems(list(MASK_MODES))
        self.mask_mode_box.setToolTip("clusters: the painted mask picks the catalog regions it covers; "
                                      "activations: the mask defines the region directly on this face")
        self.coverage_box = self._spin(0.05, 1.0, 0.05, "clusters: share of a region the mask must cover")
        self._show_settings(TransferEdit(fit=True, fit_preset=NEW_TRANSFER_PRESET))
        adv = QFormLayout(self.advanced)
        adv.setContentsMargins(12, 0, 0, 0)
        adv.addRow("Query", self.query_box)
        adv.addRow("λ", self.lam_box)
        adv.addRow("ε", self.eps_box)
        adv.addRow("ρ", self.rho_box)
        adv.addRow("τ", self.tau_box)
        adv.addRow("Mask method", self.mask_mode_box)
        adv.addRow("Coverage", self.coverage_box)
        self.advanced.hide()

        self.remove_button = QPushButton("Remove transfer")
        self.remove_button.setToolTip("Take the transfer out of the document (undoable)")

        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(10, 8, 8, 8)
        lay.setSpacing(6)
        lay.addWidget(_section("Reference face"))
        lay.addLayout(ref)
        region_head = QHBoxLayout()
        region_head.addWidget(_section("Region"))
        region_head.addStretch(1)
        region_head.addWidget(self.show_region_box)
        lay.addLayout(region_head)
        lay.addWidget(self.catalog_hint)
        lay.addWidget(self.build_button)
        lay.addWidget(self.region_list)
        lay.addWidget(self.clusters_toggle)
        lay.addWidget(_section("…or paint it"))
        lay.addLayout(self.brush.tools)
        lay.addLayout(self.brush.settings)
        lay.addWidget(_section("Transfer"))
        lay.addWidget(self.strength)
        fit_row = QHBoxLayout()
        fit_row.addWidget(self.fit_box)
        fit_row.addWidget(self.fit_preset_box)
        fit_row.addStretch(1)
        lay.addLayout(fit_row)
        lay.addWidget(self.advanced_toggle)
        lay.addWidget(self.advanced)
        lay.addWidget(self.remove_button)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        # wiring
        self.ref_seed.valueChanged.connect(self._on_ref_seed)
        self.ref_from_project.clicked.connect(self._ref_from_project_dialog)
        self.region_list.itemSelectionChanged.connect(self._on_region_selection)
        self.build_button.clicked.connect(self._build_dialog)
        self.brush.stroke_finished.connect(self._on_stroke)
        self.clear_button.clicked.connect(self.clear_mask)
        self.invert_button.clicked.connect(self.invert_mask)
        self.show_region_box.toggled.connect(self.brush.show_outline)
        self.clusters_toggle.toggled.connect(self.show_clusters)
        self.advanced_toggle.toggled.connect(self._on_advanced_toggled)
        self.fit_box.toggled.connect(self._on_fit_toggled)
        self.fit_preset_box.currentIndexChanged.connect(
            lambda i: self._setting("fit_preset", self.fit_preset_box.itemData(i), "fit"))
        self.query_box.currentTextChanged.connect(lambda v: self._setting("query", v, "Query"))
        self.lam_box.valueChanged.connect(lambda v: self._setting("lam", v, "λ"))
        self.eps_box.valueChanged.connect(lambda v: self._setting("eps", v, "ε"))
        self.rho_box.valueChanged.connect(lambda v: self._setting("rho", v, "ρ"))
        self.tau_box.valueChanged.connect(lambda v: self._setting("tau", v, "τ"))
        self.mask_mode_box.currentTextChanged.connect(lambda v: self._setting("mask_mode", v, "Mask method"))
        self.coverage_box.valueChanged.connect(lambda v: self._setting("coverage", v, "Coverage"))
        self.remove_button.clicked.connect(self.remove_transfer)
        ctx.model_changed.connect(self._on_model)
        ctx.holder.changed.connect(self._on_doc)
        ctx.interaction_finished.connect(self._catch_up)
        self._set_catalog_enabled(False)
        if ctx.model is not None:
            self._on_model(ctx.model)
        self._on_doc(ctx.doc, False)

    def _catch_up(self) -> None:
        if self._behind:
            self._on_doc(self.ctx.doc, False)

    def _show_settings(self, e: TransferEdit) -> None:
        """The Advanced boxes show a transfer's query and mask settings."""
        self.fit_box.setChecked(e.fit)
        self.fit_preset_box.setCurrentIndex(self.fit_preset_box.findData(e.fit_preset))
        self.fit_preset_box.setEnabled(e.fit)
        self.query_box.setCurrentText(e.query)
        self.lam_box.setValue(e.lam)
        self.eps_box.setValue(e.eps)
        self.rho_box.setValue(e.rho)
        self.tau_box.setValue(e.tau)
        self.mask_mode_box.setCurrentText(e.mask_mode)
        self.coverage_box.setValue(e.coverage)

    @staticmethod
    def _spin(lo: float, hi: float, step: float, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setKeyboardTracking(False)
        box.setToolTip(tip)
        return box

    # -- the document's transfer edit ---------------------------------------------------------
    def current(self, doc: EditDocument | None = None) -> TransferEdit | None:
        doc = doc if doc is not None else self.ctx.doc
        e = doc.edit(EDIT_ID)
        if isinstance(e, TransferEdit):
            return e
        return next((e for e in doc.edits if isinstance(e, TransferEdit)), None)

    def draft(self) -> TransferEdit:
        """A new transfer from what the panel shows (used until the document has one)."""
        src = self.ctx.doc.source
        psi = src.psi if isinstance(src, SeedSource) else 0.7
        return TransferEdit(reference=SeedSource(seed=self.ref_seed.value(), psi=psi), id=EDIT_ID,
                            query=self.query_box.currentText(), lam=self.lam_box.value(),
                            eps=self.eps_box.value(), rho=self.rho_box.value(), tau=self.tau_box.value(),
                            mask_mode=self.mask_mode_box.currentText(), coverage=self.coverage_box.value(),
                            fit=self.fit_box.isChecked(), fit_preset=self.fit_preset_box.currentData())

    def updated(self, doc: EditDocument, **changes: Any) -> EditDocument:
        """``doc`` with its transfer changed (created from the panel if needed); ``doc`` itself if unchanged.
        A fit made earlier in this session for the changed transfer comes with it."""
        base = self.current(doc)
        if base is None:
            base = self.draft()
        elif all(_same(getattr(base, k), v) for k, v in changes.items()):
            return doc
        return doc.with_edit(self.fits.with_known_fit(doc, dataclasses.replace(base, **changes)))

    def change(self, text: str, **changes: Any) -> bool:
        """Push one undo step that changes the transfer; errors go to the user, not up the stack."""
        doc = self.ctx.doc
        try:
            after = self.updated(doc, **changes)
        except StyleStudioError as exc:
            self.ctx.report_error("Regions", str(exc))
            self._on_doc(doc, False)  # put the widgets back
            return False
        if after is doc:
            return False
        if changes.get("fit") or "fit_preset" in changes:
            self.fits.allow_again()  # switching the fit on asks again for what was cancelled
        self.ctx.push(EditChangeCommand(self.ctx.holder, after, text, before=doc))
        return True

    # -- reference ------------------------------------------------------------------------------
    def set_reference(self, source: Source, text: str = "") -> bool:
        return self.change(text or f"Reference: {source.label()}", reference=source)

    def _on_ref_seed(self, seed: int) -> None:
        if self._syncing:
            return
        e = self.current()
        psi = e.reference.psi if e is not None and isinstance(e.reference, SeedSource) else \
            getattr(self.ctx.doc.source, "psi", 0.7)
        self.set_reference(SeedSource(seed=int(seed), psi=float(psi)))

    def _ref_from_project_dialog(self) -> None:
        from ...engine.project import SUFFIX

        path, _ = QFileDialog.getOpenFileName(self, "Reference Face from a Project", str(Path.home()),
                                              f"StyleStudio project (*{SUFFIX})")
        if path:
            self.reference_from_project(Path(path))

    def reference_from_project(self, path: Path) -> bool:
        """The face (source) of a saved project as the reference; its own edits are not taken."""
        from ...engine.project import load_project

        try:
            doc = load_project(path)
        except StyleStudioError as exc:
            self.ctx.report_error("Could not use that project", str(exc))
            return False
        return self.set_reference(doc.source, f"Reference: {Path(path).stem}")

    def _update_thumbnail(self, doc: EditDocument) -> None:
        e = self.current(doc)
        source = e.reference if e is not None else self.draft().reference
        key = (doc.model, source.key())
        if key == self._thumb_key or not self._model:
            return
        self._thumb_key = key
        model = doc.model

        def done(arr: np.ndarray) -> None:
            if self._thumb_key == key:
                self.ref_thumb.setPixmap(QPixmap.fromImage(qimage_from_array(arr)))

        self.ctx.engine.submit_task(ReferenceThumbnail(model, source, THUMB_PX), on_done=done)

    # -- catalog ----------------------------------------------------------------------------
    def _on_model(self, desc: Any) -> None:
        if desc.name == self._model:
            return
        self._model = desc.name
        self.catalog = None
        self.catalog_missing = False
        self._set_catalog_enabled(False)
        self.catalog_hint.setText(f"Reading the region catalog of {desc.name}…")
        model = desc.name
        self.ctx.engine.submit_task(CatalogInfo(model), on_done=lambda info: self._set_catalog(model, info),
                                    on_error=lambda msg, cancelled: self._catalog_failed(model, msg))
        self._thumb_key = None
        self._update_thumbnail(self.ctx.doc)

    def build_catalog(self, k: int = DEFAULT_K, samples: int = 200) -> int:
        """Start building the current model's catalog in the job thread (progress in the Jobs panel
        and the status bar, Esc cancels); editing goes on meanwhile."""
        model = self._model or self.ctx.doc.model
        self.build_button.setEnabled(False)
        self.catalog_hint.setText(f"Building the region catalog of {model}…")

        def failed(message: str, cancelled: bool) -> None:
            self.build_button.setEnabled(True)
            self.catalog_hint.setText(f"{model} has no region catalog yet." if cancelled else
                                      f"Building the catalog failed: {message}")
            if not cancelled:
                self.ctx.report_error("Build catalog failed", message)

        self.build_job = self.ctx.engine.submit_task(
            BuildCatalog(model, k=k, samples=samples), on_done=lambda built: self._set_catalog(model, built.info),
            on_error=failed)
        return self.build_job

    def _build_dialog(self) -> None:
        dlg = BuildCatalogDialog(self._model or self.ctx.doc.model, self)
        with modal(dlg) as accepted:
            if accepted:
                self.build_catalog(dlg.k.value(), dlg.samples.value())

    def _set_catalog(self, model: str, info: dict[str, Any] | None) -> None:
        if model != self._model:
            return
        self.catalog = info
        self.catalog_missing = info is None
        self.build_button.setVisible(info is None)
        self.build_button.setEnabled(True)
        self.region_list.clear()
        if info is None:
            self.catalog_hint.setText(f"{model} has no region catalog yet: build one to pick or paint regions.")
        else:
            named = info["names"]
            for name, clusters in named.items():
                item = QListWidgetItem(name)
                item.setData(REGION_ROLE, name)
                item.setToolTip(f"clusters {', '.join(f'c{c}' for c in clusters)}")
                self.region_list.addItem(item)
            for i, label in enumerate(info["clusters"]):
                if label in named:
                    continue
                item = QListWidgetItem(f"c{i}  ·  {info['area'][i] * 100:.0f}% of the picture")
                item.setData(REGION_ROLE, f"c{i}")
                item.setData(CLUSTER_ROLE, True)
                self.region_list.addItem(item)
            # named regions first and alone; the clusters behind "Advanced" (shown when nothing is named)
            self.clusters_toggle.setVisible(bool(named))
            self.clusters_toggle.setChecked(not named)
            self.show_clusters(not named)
            self.catalog_hint.setText(f"{len(named)} named regions, {info['k']} clusters" if named else
                                      f"{info['k']} unnamed clusters (name them with `stylestudio catalog label`)")
        self._set_catalog_enabled(info is not None)
        self._on_doc(self.ctx.doc, False)
        self.catalog_changed.emit()

    def _catalog_failed(self, model: str, message: str) -> None:
        if model != self._model:
            return
        self.catalog = None
        self.catalog_hint.setText(f"The region catalog of {model} cannot be used: {message}")
        self.build_button.setVisible(True)
        self.catalog_changed.emit()

    def _set_catalog_enabled(self, on: bool) -> None:
        for w in (self.region_list, self.strength):
            w.setEnabled(on)
        self.brush.set_enabled(on)

    # -- regions ----------------------------------------------------------------------------
    def select_regions(self, names: list[str]) -> bool:
        """Pick named regions (or ``c3`` clusters) as the transferred region."""
        if not names:
            return False
        tuned = (self.catalog or {}).get("queries", {}).get(names[0]) if len(names) == 1 else None
        query = query_fields(tuned) if tuned else {}  # unions and clusters keep the current settings
        return self.change(f"Region: {' + '.join(names)}", region=tuple(names), mask=None, **query)

    def _on_region_selection(self) -> None:
        if self._syncing:
            return
        names = [it.data(REGION_ROLE) for it in self.region_list.selectedItems()]
        if names:
            self.select_regions(names)

    # -- painting ---------------------------------------------------------------------------
    def show_clusters(self, on: bool) -> None:
        """List (or hide) the catalog's unnamed clusters below the named regions."""
        if self.clusters_toggle.isChecked() != on:
            self.clusters_toggle.setChecked(on)  # comes back here through toggled
            return
        self.clusters_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        for i in range(self.region_list.count()):
            item = self.region_list.item(i)
            if item.data(CLUSTER_ROLE):
                item.setHidden(not on)

    def visible_regions(self) -> list[str]:
        """The names the list shows now (hidden clusters left out)."""
        return [it.data(REGION_ROLE) for it in (self.region_list.item(i) for i in range(self.region_list.count()))
                if not it.isHidden()]

    def _on_stroke(self, mask: np.ndarray | None) -> None:
        what = "Erase" if self.painter.eraser else "Brush stroke"
        self.set_mask(mask, what)

    def set_mask(self, mask: np.ndarray | None, text: str = "Brush stroke") -> bool:
        """Make ``mask`` (uint8 0–255, any size; None = nothing) the transferred region."""
        ok = self.change(text, mask=mask, region=())
        if not ok:
            self.painter.set_mask(self._doc_mask(self.ctx.doc))
        return ok

    def clear_mask(self) -> None:
        e = self.current()
        if e is not None and e.mask is not None:
            self.set_mask(None, "Clear painted region")

    def invert_mask(self) -> None:
        e = self.current()
        m = to_mask_array(e.mask if e is not None else None)
        self.set_mask(to_document_mask(1.0 - m), "Invert painted region")

    def _doc_mask(self, doc: EditDocument) -> np.ndarray | None:
        e = self.current(doc)
        return e.mask if e is not None else None

    def _show_region(self, doc: EditDocument, e: TransferEdit | None) -> None:
        """Overlay of a named region on the face: its clusters on this face's own cluster map."""
        if e is None or not e.region or self.catalog is None:
            self._region_key = None
            return
        try:
            clusters = tuple(sorted({c for name in e.region for c in _resolve(self.catalog, name)}))
        except KeyError:
            return
        others = tuple(x for x in doc.edits if not isinstance(x, TransferEdit))
        key = (doc.model, doc.source.key(), clusters, tuple(id(x) for x in others))
        if key == self._region_key:
            return
        self._region_key = key
        snapshot = doc

        def done(m: np.ndarray) -> None:
            cur = self.current()
            if self._region_key == key and cur is not None and cur.region and not self.painter.is_stroking():
                self.painter.show_region_mask(m)

        self.ctx.engine.submit_task(RegionMap(snapshot, clusters, MASK_RES), on_done=done)

    # -- settings ---------------------------------------------------------------------------
    def _setting(self, name: str, value: Any, label: str) -> None:
        if self._syncing:
            return
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        self.change(f"Transfer {label} {shown}", **{name: value})

    def _on_fit_toggled(self, on: bool) -> None:
        if not self._syncing:
            self.change("Fit transfer to this face" if on else "Transfer with the region's settings", fit=on)

    def _on_advanced_toggled(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def remove_transfer(self) -> None:
        e = self.current()
        if e is not None:
            self.ctx.push(EditChangeCommand(self.ctx.holder, self.ctx.doc.without_edit(e.id), "Remove transfer"))

    # -- document → widgets -----------------------------------------------------------------
    def _on_doc(self, doc: EditDocument, interactive: bool) -> None:
        e = self.current(doc)
        if interactive and e is self._shown_edit:
            self._behind = True  # a step of another slider's drag: catch up (mask, fit) when it ends
            return
        self._shown_edit, self._behind = e, False
        self._syncing = True
        try:
            if e is not None:
                if isinstance(e.reference, SeedSource):
                    self.ref_seed.setValue(e.reference.seed)
                    self.ref_label.setText(f"ψ {e.reference.psi:g}")
                else:
                    self.ref_label.setText(e.reference.label())
                self._show_settings(e)
            else:
                self.ref_label.setText("")
                # the next transfer is a new one: it gets the default fit, whatever the last one had
                self.fit_box.setChecked(True)
                self.fit_preset_box.setCurrentIndex(self.fit_preset_box.findData(NEW_TRANSFER_PRESET))
                self.fit_preset_box.setEnabled(True)
            region = set(e.region) if e is not None else set()
            for i in range(self.region_list.count()):
                item = self.region_list.item(i)
                item.setSelected(item.data(REGION_ROLE) in region)
                if item.isSelected() and item.isHidden():  # a cluster picked earlier: show it
                    self.show_clusters(True)
        finally:
            self._syncing = False
        self.strength.sync(doc)
        self.remove_button.setEnabled(e is not None)
        if e is None or not e.region:
            self._region_key = None
            self.painter.set_mask(e.mask if e is not None else None)
        else:
            self._show_region(doc, e)
        self._update_thumbnail(doc)
        self.fits.ensure(doc)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and \
            bool(np.array_equal(a, b))
    return a == b


def _resolve(info: dict[str, Any], name: str) -> tuple[int, ...]:
    """Region name → clusters, like :meth:`Catalog.resolve` but on the GUI's copy of the names."""
    out: list[int] = []
    for part in name.split("+"):
        part = part.strip().lower()
        if part in info["names"]:
            out.extend(info["names"][part])
        elif part.startswith("c") and part[1:].isdigit():
            out.append(int(part[1:]))
        else:
            raise KeyError(part)
    return tuple(out)


register_panel(PanelSpec("regions", "Regions", lambda ctx: RegionsPanel(ctx), area="right", order=40,
                         icon="faces", shortcut="Ctrl+Shift+G", tab_with="sliders-sefa"))
