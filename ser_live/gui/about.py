"""The about box: the app, the model's name, labels and framing, and every entry of its card
(what it was trained on, how well it did, its licence), so a user can judge the verdicts."""

from __future__ import annotations

import html
from typing import Any

from PyQt6 import QtCore, QtWidgets

from ser_live import __version__
from ser_live.gui.widgets import app_icon
from ser_live.session import LiveSession, demo_clip_path


def about_html(session: LiveSession) -> str:
    """The about box: app, model name and labels, and every entry of the model card."""
    meta = session.classifier.metadata
    cfg = session.processor.cfg
    rows = [
        ("model", meta.name),
        ("file", str(session.classifier.model_path)),
        ("labels", ", ".join(meta.labels)),
        ("window / hop", f"{cfg.window_s:g} s / {cfg.hop_s:g} s at {cfg.sample_rate_hz} Hz"),
    ]
    rows += [(str(key).replace("_", " "), _card_value(value)) for key, value in meta.card.items()]
    if not meta.card:
        rows.append(("model card", "(this model's metadata has no card)"))
    table = "".join(
        f"<tr><td valign='top'><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    demo = demo_clip_path()
    demo_note = (
        "<p>Demo clip: four RAVDESS clips of actor 03, CC BY-NC-SA 4.0 "
        "(Livingstone &amp; Russo 2018, doi:10.1371/journal.pone.0196391).</p>" if demo else ""
    )
    return (
        f"<h3>ser-live {html.escape(__version__)}</h3>"
        "<p>Real-time speech emotion recognition.</p>"
        f"<table cellspacing='4'>{table}</table>{demo_note}"
    )


def _card_value(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_card_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_card_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)



def about_box(parent: QtWidgets.QWidget, session: LiveSession) -> QtWidgets.QMessageBox:
    """The about box, not yet shown (the window opens it without blocking its event loop)."""
    box = QtWidgets.QMessageBox(parent)
    box.setWindowTitle("About ser-live")
    box.setTextFormat(QtCore.Qt.TextFormat.RichText)
    box.setText(about_html(session))
    icon = app_icon()
    if icon is not None:
        box.setIconPixmap(icon.pixmap(64, 64))
    return box
