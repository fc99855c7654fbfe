"""The emotion classifier: a TFLite interpreter plus the metadata JSON that describes it.

The metadata (``<name>.json`` beside ``<name>.tflite``) is the source of truth for labels,
features and quantization; it is checked against the interpreter's tensors at load time so
that a mismatched pair fails loudly instead of predicting nonsense.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.adaptation import AdaptationPrior
from ser_live.config import FeatureConfig
from ser_live.errors import ModelError
from ser_live.resources import MODEL, PACKAGE_DIR, resource_path


def default_model_path() -> Path:
    """The shipped model; where it is missing, the path it should have (for the error message)."""
    return resource_path(MODEL) or PACKAGE_DIR.parent / MODEL


def metadata_path_for(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


@dataclass(frozen=True)
class QuantParams:
    """Affine int8 quantization: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int

    def matches(self, other: QuantParams) -> bool:
        return self.zero_point == other.zero_point and bool(np.isclose(self.scale, other.scale, rtol=1e-5))


# A confidence below this says the verdict is more likely wrong than right (calibrated, so a
# shown 0.4 is right about 40% of the time): headless output and the GUI call it uncertain.
DEFAULT_UNCERTAIN_BELOW = 0.5
# int8 softmax outputs have steps of 1/256: a 0 means "below half a step", which is where a
# temperature would otherwise leave an exact zero forever
PROB_FLOOR = 1.0 / 512


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling of the model's probabilities, fitted on held-out speakers' windows.

    ``p_i ** (1 / temperature)``, renormalized: the same as dividing the logits by it. A model
    without this block in its JSON (made before calibration existed) gets temperature 1.
    """

    temperature: float = 1.0
    uncertain_below: float = DEFAULT_UNCERTAIN_BELOW
    fitted_on: str = "not fitted"

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError("calibration temperature must be positive")
        if not 0 <= self.uncertain_below <= 1:
            raise ValueError("calibration uncertain_below must be in [0, 1]")

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for ``(..., classes)`` raw ones (each row sums to 1)."""
        if self.temperature == 1.0:
            return np.asarray(probs, dtype=np.float32)
        scaled = np.exp(np.log(np.maximum(probs, PROB_FLOOR)) / self.temperature)
        return (scaled / scaled.sum(axis=-1, keepdims=True)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "uncertain_below": self.uncertain_below, "fitted_on": self.fitted_on}


@dataclass(frozen=True)
class ModelMetadata:
    """What the runtime needs to know about a model, plus its model card."""

    name: str
    labels: tuple[str, ...]
    features: FeatureConfig
    input_quant: QuantParams
    output_quant: QuantParams
    card: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    adaptation: AdaptationPrior | None = None  # session_cmvn models: the training speakers' moments

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.features.frames_per_window, self.features.n_features, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "labels": list(self.labels),
            "features": self.features.to_dict(),
            "input": {
                "shape": list(self.input_shape),
                "dtype": "int8",
                "scale": self.input_quant.scale,
                "zero_point": self.input_quant.zero_point,
            },
            "output": {
                "shape": [1, len(self.labels)],
                "dtype": "int8",
                "scale": self.output_quant.scale,
                "zero_point": self.output_quant.zero_point,
            },
            "calibration": self.calibration.to_dict(),
            **({"adaptation": self.adaptation.to_dict()} if self.adaptation is not None else {}),
            "card": self.card,
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        """Raises MetadataSchemaError naming the first key that is missing or of the wrong kind."""
        validate_metadata(data)
        features = FeatureConfig.from_dict(data["features"])
        return cls(
            name=str(data["name"]),
            labels=tuple(data["labels"]),
            features=features,
            input_quant=QuantParams(float(data["input"]["scale"]), int(data["input"]["zero_point"])),
            output_quant=QuantParams(float(data["output"]["scale"]), int(data["output"]["zero_point"])),
            card=dict(data.get("card", {})),
            calibration=Calibration(**data.get("calibration", {})),
            adaptation=AdaptationPrior.from_dict(data["adaptation"]) if "adaptation" in data else None,
        )

    @classmethod
    def load(cls, path: Path) -> ModelMetadata:
        path = Path(path)
        if not path.exists():
            raise ModelError(f"model metadata not found: {path} (it must sit beside the .tflite)")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except MetadataSchemaError as exc:
            raise ModelError(f"model metadata {path} is invalid: {exc}") from exc
        except (OSError, UnicodeDecodeError, RecursionError) as exc:
            raise ModelError(f"cannot read model metadata {path}: {exc}") from exc
        except (ValueError, ArithmeticError) as exc:  # not JSON, or values FeatureConfig refuses together
            raise ModelError(f"model metadata {path} is invalid: {exc}") from exc


class MetadataSchemaError(ValueError):
    """The metadata JSON does not have the shape the runtime reads; the message names the key."""


# Every model's metadata has carried these; a key added to FeatureConfig later may be absent
# from an older model's JSON, and its default must then mean what the older model was made with.
REQUIRED_FEATURE_KEYS = frozenset({
    "sample_rate_hz", "n_fft", "win_length", "hop_length", "n_mels", "fmin_hz", "fmax_hz", "log_floor",
    "window_s", "hop_s", "normalization", "relative_floor_db",
})
_JSON_KINDS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,)}
_KIND_NAMES: dict[tuple[type, ...], str] = {
    (int,): "an integer", (int, float): "a number", (str,): "a string", (list,): "a list", (dict,): "a JSON object",
}


def _check(data: Any, key: str, kinds: tuple[type, ...], where: str = "") -> Any:
    """``data[key]``, which must be present and of one of ``kinds`` (true/false is no number,
    numbers are finite); else MetadataSchemaError naming ``where + key``."""
    name = f"{where}{key}"
    if key not in data:
        raise MetadataSchemaError(f"'{name}' is missing")
    value: Any = data[key]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (isinstance(value, kinds) and (is_number or not isinstance(value, bool))):
        raise MetadataSchemaError(f"'{name}' must be {_KIND_NAMES[kinds]}, not {json.dumps(value)[:60]}")
    if isinstance(value, float) and not math.isfinite(value):  # ints are always finite
        raise MetadataSchemaError(f"'{name}' must be finite, not {value}")
    return value


def validate_metadata(data: Any) -> None:
    """Check the metadata's shape before it is read: every key the runtime uses is present and
    of its kind, so a file with ``"features": {}`` or ``"labels": "abc"`` is refused by name
    instead of being filled with defaults or split into letters. Keys the runtime does not
    read are let through (newer metadata may carry more)."""
    if not isinstance(data, dict):
        raise MetadataSchemaError("the top level must be a JSON object")
    _check(data, "name", (str,))
    labels = _check(data, "labels", (list,))
    if len(labels) < 2:
        raise MetadataSchemaError("'labels' must name at least two classes")
    for i, label in enumerate(labels):
        if not isinstance(label, str) or not label:
            raise MetadataSchemaError(f"'labels[{i}]' must be a non-empty string, not {json.dumps(label)[:60]}")
    if len(set(labels)) != len(labels):
        raise MetadataSchemaError("'labels' must not repeat a label")
    features = _check(data, "features", (dict,))
    for spec in dataclasses.fields(FeatureConfig):
        if spec.name in REQUIRED_FEATURE_KEYS or spec.name in features:
            _check(features, spec.name, _JSON_KINDS[str(spec.type)], "features.")
    for tensor in ("input", "output"):
        quant = _check(data, tensor, (dict,))
        _check(quant, "scale", (int, float), f"{tensor}.")
        zero_point = _check(quant, "zero_point", (int,), f"{tensor}.")
        if not quant["scale"] > 0:
            raise MetadataSchemaError(f"'{tensor}.scale' must be positive, not {quant['scale']}")
        if not -128 <= zero_point <= 127:
            raise MetadataSchemaError(f"'{tensor}.zero_point' must be an int8 (-128 to 127), not {zero_point}")
    if "calibration" in data:
        _check_calibration(data)
    if features["normalization"] == "session_cmvn" or "adaptation" in data:
        _check_adaptation(data, FeatureConfig.from_dict(features).n_features)
    if "card" in data and not isinstance(data["card"], dict):
        raise MetadataSchemaError("'card' must be a JSON object")


def _check_calibration(data: dict) -> None:
    """The temperature block, if present: known keys only, each of its kind."""
    block = _check(data, "calibration", (dict,))
    kinds = {"temperature": (int, float), "uncertain_below": (int, float), "fitted_on": (str,)}
    for key in block:
        if key not in kinds:
            raise MetadataSchemaError(f"'calibration.{key}' is not a known key ({', '.join(kinds)})")
        _check(block, key, kinds[key], "calibration.")


def _check_adaptation(data: dict, n_features: int) -> None:
    """A session-adapting model's prior: one mean and one mean square per feature, finite."""
    block = _check(data, "adaptation", (dict,))
    for key in ("mean", "square"):
        values = _check(block, key, (list,), "adaptation.")
        if len(values) != n_features:
            raise MetadataSchemaError(f"'adaptation.{key}' must have {n_features} values (one per feature), "
                                      f"not {len(values)}")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise MetadataSchemaError(f"'adaptation.{key}' must hold finite numbers")
    for key in ("prior_s", "memory_s", "warm_s"):
        if key in block:
            _check(block, key, (int, float), "adaptation.")


def _interpreter_class() -> Any:
    """LiteRT's interpreter, or the older tflite_runtime where only that is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(
                "no TFLite interpreter installed: pip install ai-edge-litert (or tflite-runtime)"
            ) from exc
    return Interpreter


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence the interpreter's native start-up chatter ("Created TensorFlow Lite XNNPACK
    delegate"), which would otherwise land in every headless run's stderr."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr descriptor: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _tensor_quant(detail: dict[str, Any]) -> QuantParams:
    scale, zero_point = detail["quantization"]
    return QuantParams(float(scale), int(zero_point))


class EmotionClassifier:
    """Synchronous int8 classifier: ``predict`` takes one normalized window, returns probabilities.

    Quantization uses the interpreter's own tensor parameters; the metadata must agree with them.
    The probabilities are calibrated with the metadata's temperature, so everything downstream
    (smoothing, headless records, the GUI, ``analyze``) shows calibrated figures.
    """

    def __init__(self, model_path: Path | str | None = None, num_threads: int = 1) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if not self.model_path.exists():
            raise ModelError(f"model not found: {self.model_path}")
        self.metadata = ModelMetadata.load(metadata_path_for(self.model_path))
        interpreter_class = _interpreter_class()
        try:
            with _quiet_native_stderr():
                self._interpreter = interpreter_class(model_path=str(self.model_path), num_threads=num_threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load model {self.model_path}: not a valid TFLite file") from exc
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._check_tensors()
        self._in_quant = _tensor_quant(self._input)
        self._out_quant = _tensor_quant(self._output)
        self._input_buffer = np.zeros(self._input["shape"], dtype=np.int8)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.metadata.labels

    @property
    def features(self) -> FeatureConfig:
        return self.metadata.features

    def _check_tensors(self) -> None:
        meta = self.metadata
        problems = []
        if tuple(self._input["shape"]) != meta.input_shape:
            problems.append(f"input shape {tuple(self._input['shape'])} != metadata {meta.input_shape}")
        if self._input["dtype"] != np.int8 or self._output["dtype"] != np.int8:
            problems.append("input and output tensors must be int8")
        if tuple(self._output["shape"]) != (1, len(meta.labels)):
            problems.append(f"output shape {tuple(self._output['shape'])} != (1, {len(meta.labels)} labels)")
        if not _tensor_quant(self._input).matches(meta.input_quant):
            problems.append("input quantization differs from metadata")
        if not _tensor_quant(self._output).matches(meta.output_quant):
            problems.append("output quantization differs from metadata")
        if problems:
            raise ModelError(f"model {self.model_path.name} does not match its metadata: " + "; ".join(problems))

    def predict(self, window: np.ndarray) -> np.ndarray:
        """Probabilities (float32, sums to 1) for one normalized window of shape (frames, n_features)."""
        expected = self.metadata.input_shape[1:3]
        if window.shape != expected:
            raise ValueError(f"expected a float32 window of shape {expected}, got {window.shape}")
        q = np.round(window / self._in_quant.scale) + self._in_quant.zero_point
        self._input_buffer[0, :, :, 0] = np.clip(q, -128, 127)
        self._interpreter.set_tensor(self._input["index"], self._input_buffer)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output["index"])[0].astype(np.float32)
        probs = np.maximum(self._out_quant.scale * (raw - self._out_quant.zero_point), 0.0)
        total = float(probs.sum())
        if total <= 0:
            return np.full(len(self.labels), 1.0 / len(self.labels), dtype=np.float32)
        return self.metadata.calibration.apply(probs / total)
