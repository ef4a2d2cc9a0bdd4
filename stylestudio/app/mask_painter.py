"""The mask brush: paint a region on the face in the canvas, in image coordinates.

The mask is a float array at a fixed resolution (:data:`MASK_RES`², independent of the model's
size and of zoom), so a mask painted on a preview frame, at any zoom, means the same region
of the face and survives a model switch. The painter only *draws*: while a stroke is in
progress it updates its own working copy (shown live as an overlay); when the button is
released it emits :attr:`MaskPainter.stroke_finished` with the whole new mask, and the panel
turns that into one undoable document change. The document, not the painter, is the truth:
after undo/redo the panel calls :meth:`MaskPainter.set_mask` with the document's mask.

The canvas hands its mouse events to an *active* tool first (``Canvas.tool``); this module is
that tool. Left button paints (or erases in eraser mode), the right button always erases.

The region is drawn as an *outline* (a coloured line with a dark halo), never as a fill: a
tinted face looks like the edit's result and hides it. It is shown only while the user asks
(``overlay_visible``, the panel's "Show region") or while the brush is active.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QWidget

MASK_RES = 256  #: mask pixels per side (image coordinates, whatever the model resolution)
SPACING = 0.2  #: dab spacing along a stroke, in brush radii (smooth lines without overdraw)


def to_mask_array(mask: np.ndarray | None, res: int = MASK_RES) -> np.ndarray:
    """A document mask (uint8 0–255 or float 0–1, any size) → float32 [res, res] in [0, 1]."""
    if mask is None:
        return np.zeros((res, res), np.float32)
    m = np.asarray(mask)
    m = m.astype(np.float32) / 255.0 if m.dtype.kind in "ui" else m.astype(np.float32)
    if m.shape != (res, res):
        from PIL import Image

        m = np.asarray(Image.fromarray(m, mode="F").resize((res, res), Image.Resampling.BILINEAR))
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def to_document_mask(mask: np.ndarray) -> np.ndarray | None:
    """Working mask → what the edit stores (uint8 0–255), or None when nothing is painted."""
    m = np.round(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)
    return m if m.any() else None


def dab(mask: np.ndarray, cx: float, cy: float, radius: float, hardness: float, erase: bool) -> None:
    """Stamp one round brush dab in place (centre and radius in mask pixels).

    Full strength inside ``hardness·radius``, a smooth falloff to zero at ``radius``. Painting
    takes the maximum and erasing the minimum with the dab's complement, so going over the same
    spot twice never makes a soft edge harder (strokes are idempotent where they overlap).
    """
    h, w = mask.shape
    r = max(0.5, float(radius))
    x0, x1 = max(0, int(np.floor(cx - r))), min(w, int(np.ceil(cx + r)) + 1)
    y0, y1 = max(0, int(np.floor(cy - r))), min(h, int(np.ceil(cy + r)) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    d = np.sqrt((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2) / r
    inner = min(float(hardness), 0.999)
    t = np.clip((1.0 - d) / (1.0 - inner), 0.0, 1.0)
    a = t * t * (3 - 2 * t)  # smoothstep
    region = mask[y0:y1, x0:x1]
    if erase:
        np.minimum(region, 1.0 - a, out=region)
    else:
        np.maximum(region, a, out=region)


_NOTHING = object()


class MaskPainter(QObject):
    """Brush state + the working mask; the canvas tool that paints it."""

    stroke_finished = Signal(object)  #: uint8 [MASK_RES, MASK_RES] mask, or None when all erased
    changed = Signal()  #: the working mask or the brush changed (repaint the overlay)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.active = False  #: brush mode on: the canvas sends its mouse here instead of panning
        self.size = 0.08  #: brush diameter as a fraction of the picture width
        self.hardness = 0.6
        self.eraser = False
        self.overlay_visible = False  #: off by default: the picture itself is what the user judges
        self.color = QColor(255, 60, 110)
        self.mask = np.zeros((MASK_RES, MASK_RES), np.float32)
        self._stroking = False
        self._erasing = False
        self._last: tuple[float, float] | None = None
        self._hover: QPointF | None = None
        self._overlay: QImage | None = None
        #: the document's mask on show: a document change that leaves it (every slider step) must
        #: not repaint the whole canvas
        self._shown: object = _NOTHING

    # -- state ------------------------------------------------------------------------------
    def set_mask(self, mask: np.ndarray | None) -> None:
        """Show the document's mask (ignored mid-stroke: the stroke ends with the document's)."""
        if self._stroking or mask is self._shown:
            return
        self._shown = mask
        self.mask = to_mask_array(mask)
        self._overlay = None
        self.changed.emit()

    def show_region_mask(self, mask: np.ndarray) -> None:
        """Show a region's mask computed by the engine (not the document's own painted mask)."""
        self._shown = _NOTHING
        self.mask = mask
        self._overlay = None
        self.changed.emit()

    def set_active(self, on: bool) -> None:
        self.active = bool(on)
        if not on:
            self._hover = None
        self.changed.emit()

    def is_stroking(self) -> bool:
        return self._stroking

    def radius_px(self) -> float:
        return max(0.5, self.size * MASK_RES / 2)

    # -- canvas tool protocol ---------------------------------------------------------------
    @staticmethod
    def _mask_point(canvas: QWidget, pos: QPointF) -> tuple[float, float]:
        pic = canvas.to_picture(pos)  # type: ignore[attr-defined]
        scale = MASK_RES / max(1, canvas.logical)  # type: ignore[attr-defined]
        return pic.x() * scale, pic.y() * scale

    def mouse_press(self, canvas: QWidget, event: QMouseEvent) -> bool:
        if event.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        self._stroking = True
        self._shown = _NOTHING  # whatever the document says after the stroke is shown
        self._erasing = self.eraser or event.button() == Qt.MouseButton.RightButton
        self._start = self.mask.copy()
        x, y = self._mask_point(canvas, event.position())
        dab(self.mask, x, y, self.radius_px(), self.hardness, self._erasing)
        self._last = (x, y)
        self._hover = event.position()
        self._overlay = None
        canvas.update()
        return True

    def mouse_move(self, canvas: QWidget, event: QMouseEvent) -> bool:
        self._hover = event.position()
        if self._stroking and self._last is not None:
            x, y = self._mask_point(canvas, event.position())
            lx, ly = self._last
            r = self.radius_px()
            steps = max(1, int(np.hypot(x - lx, y - ly) / max(0.5, r * SPACING)))
            for i in range(1, steps + 1):
                f = i / steps
                dab(self.mask, lx + (x - lx) * f, ly + (y - ly) * f, r, self.hardness, self._erasing)
            self._last = (x, y)
            self._overlay = None
        canvas.setCursor(Qt.CursorShape.CrossCursor)
        canvas.update()
        return True

    def mouse_release(self, canvas: QWidget, event: QMouseEvent) -> bool:
        if not self._stroking:
            return False
        self._stroking = False
        self._last = None
        canvas.update()
        if not np.array_equal(self.mask, self._start):
            self.stroke_finished.emit(to_document_mask(self.mask))
        return True

    def leave(self, canvas: QWidget) -> None:
        self._hover = None
        canvas.update()

    def paint(self, p: QPainter, rect: QRectF) -> None:
        """Draw the overlay over the picture (``rect``) and the brush outline under the pointer."""
        if (self.overlay_visible or self.active) and self.mask.any():
            p.save()
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(rect, self.overlay_image())
            p.restore()
        if self.active and self._hover is not None:
            r = self.size * rect.width() / 2
            p.save()
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(QColor(0, 0, 0, 160), 3))
            p.drawEllipse(self._hover, r, r)
            p.setPen(QPen(QColor(255, 255, 255, 230), 1.2, Qt.PenStyle.DashLine if self.eraser else Qt.PenStyle.SolidLine))
            p.drawEllipse(self._hover, r, r)
            p.restore()

    def overlay_image(self) -> QImage:
        """The region's outline as an RGBA layer (cached until the mask changes).

        The line is the boundary of the half-covered mask: the inside pixels next to the outside in
        the brush colour, the outside pixels next to the inside in translucent black, so it reads
        on light and dark skin alike; everything else stays fully transparent.
        """
        if self._overlay is None:
            edge, halo = outline(self.mask >= 0.5)
            rgba = np.zeros((MASK_RES, MASK_RES, 4), np.uint8)
            rgba[halo] = (0, 0, 0, 150)
            rgba[edge] = (self.color.red(), self.color.green(), self.color.blue(), 255)
            self._overlay = QImage(rgba.data, MASK_RES, MASK_RES, 4 * MASK_RES,
                                   QImage.Format.Format_RGBA8888).copy()
        return self._overlay


def outline(inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(edge, halo) of a boolean region: its pixels with an outside 4-neighbour, and the outside
    pixels with an inside 4-neighbour (the picture's border counts as outside)."""
    pad = np.pad(inside, 1, constant_values=False)
    core = pad[1:-1, 1:-1]
    n = (pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:])
    all_in = n[0] & n[1] & n[2] & n[3]
    any_in = n[0] | n[1] | n[2] | n[3]
    return core & ~all_in, ~core & any_in
