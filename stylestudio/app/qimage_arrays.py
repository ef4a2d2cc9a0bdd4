"""QImage ↔ numpy conversions: how frames cross from the engine's arrays to Qt and back."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def qimage_from_array(array: np.ndarray) -> QImage:
    """HxWx3 uint8 → a QImage that owns its pixels (safe to hand to another thread)."""
    array = np.ascontiguousarray(array)
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def array_from_qimage(image: QImage) -> np.ndarray:
    """QImage → HxWx3 uint8 copy."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = img.height(), img.width()
    buf = np.frombuffer(img.constBits(), np.uint8, count=img.bytesPerLine() * h)
    return buf.reshape(h, img.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()

