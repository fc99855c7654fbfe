"""Draw assets/ser-live.png, the app icon (256 px): a waveform over bars in the emotion colours.

    QT_QPA_PLATFORM=offscreen python assets/make_icon.py
"""

from __future__ import annotations

import math
from pathlib import Path

from PyQt6 import QtCore, QtGui, QtWidgets

SIZE = 256
BARS = [(214, 39, 40), (240, 160, 0), (44, 160, 44), (31, 100, 200), (148, 103, 189)]


def draw() -> QtGui.QImage:
    image = QtGui.QImage(SIZE, SIZE, QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(image)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setBrush(QtGui.QColor(32, 40, 56))
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.drawRoundedRect(QtCore.QRectF(8, 8, SIZE - 16, SIZE - 16), 44, 44)
    width = 28
    heights = [0.35, 0.62, 0.45, 0.8, 0.52]
    x0 = (SIZE - len(BARS) * width - (len(BARS) - 1) * 12) / 2
    for i, ((r, g, b), h) in enumerate(zip(BARS, heights, strict=True)):
        top = 212 - h * 150
        p.setBrush(QtGui.QColor(r, g, b))
        p.drawRoundedRect(QtCore.QRectF(x0 + i * (width + 12), top, width, 212 - top), 6, 6)
    path = QtGui.QPainterPath()
    for k in range(0, 201):
        x = 28 + k
        envelope = math.sin(math.pi * k / 200) ** 2
        y = 92 + 46 * envelope * math.sin(k / 5.0) * math.cos(k / 17.0)
        path.moveTo(x, y) if k == 0 else path.lineTo(x, y)
    p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
    p.setPen(QtGui.QPen(QtGui.QColor(240, 240, 240), 7, cap=QtCore.Qt.PenCapStyle.RoundCap))
    p.drawPath(path)
    p.end()
    return image


if __name__ == "__main__":
    app = QtWidgets.QApplication([])
    draw().save(str(Path(__file__).with_name("ser-live.png")))
