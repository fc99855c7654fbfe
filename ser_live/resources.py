"""Files shipped with ser-live (the model, the VAD, the demo clip, the icon), found one way.

Installed from a wheel they sit inside the package (pyproject's ``force-include`` puts them
there); in a source checkout they sit in the repository beside the package. Every lookup of a
shipped file goes through :func:`resource_path`, so the two layouts are handled in one place.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_ROOTS = (PACKAGE_DIR, PACKAGE_DIR.parent)  # installed wheel first, then the source checkout

MODEL = "models/ser-cnn.tflite"
VAD_MODEL = "models/vad/silero_vad_16k_sequence.onnx"
DEMO_CLIP = "assets/demo/ser-live-demo.flac"
ICON = "assets/ser-live.png"


def resource_path(relative: str) -> Path | None:
    """The shipped file at ``relative`` (a path as in the repository), or None when it is not installed."""
    for root in _ROOTS:
        candidate = root / relative
        if candidate.is_file():
            return candidate
    return None
