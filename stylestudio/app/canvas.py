"""The picture canvas: zoom, pan, fit, 1:1 and before/after (hold or split).

The canvas always lays the picture out at the model's *logical* resolution (e.g. 1024 px) and
draws whatever frame it has into that rectangle: a 256-px preview while a slider moves, the
full frame afterwards. So zoom and pan never jump when a preview is replaced by the final frame.

"Original" (hold ``\\``, split view) is the unedited face; for a photo project it is the *photo*
itself (its aligned crop, :meth:`Canvas.set_original`), not the model's inversion of it.
"""
from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QColor, QFont, QImage, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen, QPixmap,
                           QWheelEvent)
from PySide6.QtWidgets import QSizePolicy, QWidget

ZOOM_STEPS = (0.0625, 0.125, 0.25, 1 / 3, 0.5, 2 / 3, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
MARGIN = 24


class Canvas(QWidget):
    """Shows the current frame. ``frame_shown(seq, quality, t)`` fires once a frame is painted."""

    zoom_changed = Signal(float)
    frame_shown = Signal(int, str, float)
    compare_changed = Signal(str)  # "off" | "hold" | "split"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(200, 200)
        self.logical = 0  #: model resolution; 0 = nothing to show yet
        self._after: QPixmap | None = None
        self._before: QPixmap | None = None
        self._before_image: QImage | None = None  #: what _before was made from (to skip a repeat)
        self._original: QPixmap | None = None  #: a photo project's aligned photo: "original" shows it
        self._after_image: QImage | None = None
        self._pending_frame: tuple[int, str] | None = None
        self.frame_seq = -1
        self.frame_quality = ""
        self._scale = 1.0
        self._center = QPointF(0, 0)  #: picture coordinate at the widget centre
        self._fit = True
        self._drag: QPointF | None = None
        self._drag_split = False
        self.hold_original = False
        self.split = False
        self.split_pos = 0.5  #: fraction of the picture width shown as "before"
        self.placeholder = "Loading…"
        #: an optional tool (the mask brush) that gets the mouse first while its ``active`` is set;
        #: it has ``mouse_press/move/release(canvas, event) -> bool``, ``leave`` and ``paint``
        self.tool: Any = None

    # -- content --------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(760, 760)

    def set_frame(self, image: QImage, logical: int, seq: int = -1, quality: str = "final") -> None:
        if logical != self.logical:
            self.logical = logical
            if self._fit:
                self._apply_fit()
        self._after_image = image
        self._after = QPixmap.fromImage(image)
        self._pending_frame = (seq, quality)
        self.update()

    def set_before(self, image: QImage | None) -> None:
        # asked on every document change (each slider step): converting a 1024-px image to a
        # pixmap again each time took a fifth of the GUI thread while a slider moved
        if image is self._before_image:
            return
        self._before_image = image
        self._before = QPixmap.fromImage(image) if image is not None else None
        if self.comparing():
            self.update()

    def set_original(self, image: QImage | None) -> None:
        """The picture "original" shows instead of the unedited render (a photo's aligned crop), or None."""
        self._original = QPixmap.fromImage(image) if image is not None else None
        if self.comparing():
            self.update()

    def original_image(self) -> QImage | None:
        """What "original" shows now: the photo for a photo project, else the unedited face (if known)."""
        pix = self._original if self._original is not None else self._before
        return pix.toImage() if pix is not None else None

    def clear(self, message: str = "") -> None:
        self._after = self._before = self._after_image = self._before_image = None
        self.placeholder = message
        self.update()

    def current_image(self) -> QImage | None:
        """The frame on screen (a preview or the final one)."""
        return self._after_image

    def has_before(self) -> bool:
        return self._before is not None or self._original is not None

    # -- view state -----------------------------------------------------------------------------
    def scale(self) -> float:
        return self._scale

    def is_fit(self) -> bool:
        return self._fit

    def fit_scale(self) -> float:
        if not self.logical:
            return 1.0
        avail = max(1, min(self.width(), self.height()) - 2 * MARGIN)
        return avail / self.logical

    def fit(self) -> None:
        self._fit = True
        self._apply_fit()

    def _apply_fit(self) -> None:
        self._scale = self.fit_scale()
        self._center = QPointF(self.logical / 2, self.logical / 2)
        self.zoom_changed.emit(self._scale)
        self.update()

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def set_zoom(self, scale: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the picture point under ``anchor`` (widget coordinates) in place."""
        scale = max(ZOOM_STEPS[0], min(ZOOM_STEPS[-1], scale))
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        pic = self.to_picture(anchor)
        self._scale = scale
        self._fit = False
        # keep ``pic`` under ``anchor``: centre = pic - (anchor - widget centre) / scale
        self._center = pic - (anchor - QPointF(self.width() / 2, self.height() / 2)) / scale
        self._clamp_center()
        self.zoom_changed.emit(scale)
        self.update()

    def zoom_in(self, anchor: QPointF | None = None) -> None:
        self.set_zoom(next((z for z in ZOOM_STEPS if z > self._scale * 1.001), ZOOM_STEPS[-1]), anchor)

    def zoom_out(self, anchor: QPointF | None = None) -> None:
        self.set_zoom(next((z for z in reversed(ZOOM_STEPS) if z < self._scale / 1.001), ZOOM_STEPS[0]), anchor)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the picture by (dx, dy) screen pixels."""
        self._center -= QPointF(dx, dy) / self._scale
        self._fit = False
        self._clamp_center()
        self.update()

    def _clamp_center(self) -> None:
        half_w = self.width() / 2 / self._scale
        half_h = self.height() / 2 / self._scale
        L = float(self.logical)
        x = min(max(self._center.x(), min(half_w, L / 2)), max(L - half_w, L / 2))
        y = min(max(self._center.y(), min(half_h, L / 2)), max(L - half_h, L / 2))
        self._center = QPointF(x, y)

    def image_rect(self) -> QRectF:
        """Where the picture lies, in widget coordinates."""
        s = self._scale
        top_left = QPointF(self.width() / 2, self.height() / 2) - self._center * s
        return QRectF(top_left.x(), top_left.y(), self.logical * s, self.logical * s)

    def to_picture(self, p: QPointF) -> QPointF:
        return self._center + (p - QPointF(self.width() / 2, self.height() / 2)) / self._scale

    # -- before/after ---------------------------------------------------------------------------
    def comparing(self) -> bool:
        return self.hold_original or self.split

    def set_hold_original(self, on: bool) -> None:
        if on != self.hold_original:
            self.hold_original = on
            self.compare_changed.emit(self.compare_mode())
            self.update()

    def set_split(self, on: bool) -> None:
        if on != self.split:
            self.split = on
            self.compare_changed.emit(self.compare_mode())
            self.update()

    def compare_mode(self) -> str:
        return "hold" if self.hold_original else "split" if self.split else "off"

    # -- painting -------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(pal.ColorRole.Base).darker(115))
        if self._after is None or not self.logical:
            p.setPen(pal.color(pal.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        rect = self.image_rect()
        # soft shadow under the picture
        shadow = rect.adjusted(-1, -1, 1, 1)
        p.setPen(QPen(QColor(0, 0, 0, 90), 1))
        p.drawRect(shadow)
        upscale = self._scale * self.logical / max(1, self._after.width())
        smooth = upscale < 4.0 or self._after.width() < self.logical  # crisp pixels only when zoomed far in
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        before = next(x for x in (self._original, self._before, self._after) if x is not None)
        if self.hold_original:
            p.drawPixmap(rect, before, QRectF(before.rect()))
            self._badge(p, rect, "Photo" if self._original is not None else "Original", Qt.AlignmentFlag.AlignLeft)
        elif self.split:
            x = rect.left() + rect.width() * self.split_pos
            left = QRectF(rect.left(), rect.top(), x - rect.left(), rect.height())
            right = QRectF(x, rect.top(), rect.right() - x, rect.height())
            p.save()
            p.setClipRect(left)
            p.drawPixmap(rect, before, QRectF(before.rect()))
            p.setClipRect(right)
            p.drawPixmap(rect, self._after, QRectF(self._after.rect()))
            p.restore()
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
            handle = QPainterPath()
            cy = min(max(rect.center().y(), 30.0), self.height() - 30.0)
            handle.addEllipse(QPointF(x, cy), 11, 11)
            p.fillPath(handle, QColor(30, 30, 30, 200))
            p.drawPath(handle)
            self._badge(p, rect, "Before", Qt.AlignmentFlag.AlignLeft)
            self._badge(p, rect, "After", Qt.AlignmentFlag.AlignRight)
        else:
            p.drawPixmap(rect, self._after, QRectF(self._after.rect()))
        if self.tool is not None and not self.hold_original:
            self.tool.paint(p, rect)
        p.end()
        if self._pending_frame is not None:
            seq, quality = self._pending_frame
            self._pending_frame = None
            self.frame_seq, self.frame_quality = seq, quality
            self.frame_shown.emit(seq, quality, time.perf_counter())

    def _badge(self, p: QPainter, rect: QRectF, text: str, side: Qt.AlignmentFlag) -> None:
        f = QFont(self.font())
        f.setPointSizeF(max(8.0, f.pointSizeF() * 0.9))
        f.setWeight(QFont.Weight.DemiBold)
        p.setFont(f)
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 16, fm.height() + 8
        visible = rect.intersected(QRectF(self.rect()))
        x = visible.left() + 10 if side == Qt.AlignmentFlag.AlignLeft else visible.right() - 10 - w
        box = QRectF(x, visible.top() + 10, w, h)
        path = QPainterPath()
        path.addRoundedRect(box, 4, 4)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.fillPath(path, QColor(0, 0, 0, 150))
        p.setPen(QColor(240, 240, 240))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # -- input ----------------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._fit:
            self._apply_fit()
        else:
            self._clamp_center()
        super().resizeEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self.tool is not None:
            self.tool.leave(self)
        super().leaveEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if not self.logical:
            return
        dy = event.angleDelta().y()
        if dy > 0:
            self.zoom_in(event.position())
        elif dy < 0:
            self.zoom_out(event.position())
        event.accept()

    def _near_split(self, pos: QPointF) -> bool:
        if not self.split or not self.logical:
            return False
        rect = self.image_rect()
        return abs(pos.x() - (rect.left() + rect.width() * self.split_pos)) < 8

    def _tool_takes(self) -> bool:
        return self.tool is not None and self.tool.active and bool(self.logical)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._tool_takes() and self.tool.mouse_press(self, event):
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self.logical:
            if self._near_split(event.position()):
                self._drag_split = True
            else:
                self._drag = event.position()
                self.setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._tool_takes() and self.tool.mouse_move(self, event):
            event.accept()
            return
        pos = event.position()
        if self._drag_split:
            rect = self.image_rect()
            self.split_pos = min(1.0, max(0.0, (pos.x() - rect.left()) / max(1.0, rect.width())))
            self.update()
        elif self._drag is not None:
            d = pos - self._drag
            self._drag = pos
            self.pan_by(d.x(), d.y())
        else:
            self.setCursor(Qt.CursorShape.SplitHCursor if self._near_split(pos) else Qt.CursorShape.OpenHandCursor
                           if self.logical else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self.tool is not None and self.tool.mouse_release(self, event):
            event.accept()
            return
        self._drag = None
        self._drag_split = False
        self.setCursor(Qt.CursorShape.OpenHandCursor if self.logical else Qt.CursorShape.ArrowCursor)
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """Double-click toggles between fit and 100 % at the clicked point."""
        if self._tool_takes():  # a quick second dab, not a zoom
            self.mousePressEvent(event)
            return
        if self._fit:
            self.set_zoom(1.0, event.position())
        else:
            self.fit()
