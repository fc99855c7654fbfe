#!/usr/bin/env python3
"""Rewrite Silero VAD's front end (STFT and four encoder convolutions) as a few large MatMuls.

Why: the sequence export runs its convolutions frame by frame. Each 32 ms frame is a batch item
of only 4 STFT columns, so onnxruntime does 16 small GEMMs per layer and hop, each 4 columns wide,
which fill a quarter of the CPU's vector width; the detector was a third of a hop (1.4 ms of 4.2
on the project's VM, about half of a hop's instructions on a Pi). Here the frames stay time-major
([frames, time, channels]) from the STFT on, and every convolution becomes one MatMul over all
the frames of a call (im2col by slicing). The LSTM and the output layer are untouched and the
inputs and outputs keep their names, shapes and meaning: ``ser_live/vad.py`` needs no change.

The arithmetic is the same sums in another order, so probabilities move by float32 rounding
(at most about 2e-6 here); this script refuses to save a model whose probabilities on a test
signal differ from the original's by more than ``TOLERANCE``. It also writes the original's
probabilities on every committed fixture clip (``REFERENCE``), to which tests/test_speech.py holds
the shipped model.

Needs the ``onnx`` package (not a dependency of ser-live; ``pip install onnx``) and the original
file, from the silero-vad 6.2.3 wheel (``silero_vad/data/silero_vad_16k_sequence.onnx``) or from
this repository's history (``git show 2658885:models/vad/silero_vad_16k_sequence.onnx``):

    python scripts/vad_matmul.py ORIGINAL.onnx models/vad/silero_vad_16k_sequence.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ser_live.audio_io import AUDIO_EXTENSIONS, load_audio  # noqa: E402
from ser_live.frontend import offline_front_end  # noqa: E402
from ser_live.model import EmotionClassifier  # noqa: E402
from ser_live.vad import SpeechDetector  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
REFERENCE = FIXTURES / "vad_reference.npz"  # the original model's frame probabilities, per fixture clip
ORIGINAL_SHA256 = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"
TOLERANCE = 1e-5  # largest probability difference accepted (float32 rounding is ~1e-6)
STFT_HOP = 128  # the STFT convolution's stride; its kernel is two hops long
STFT_BINS = 129
STFT_COLUMNS = 4  # STFT columns per frame the encoder sees (the first of five is dropped)
FIRST_REPLACED = "/stft/Constant"  # the original's nodes from here up to the LSTM are replaced
LSTM = "/recurrent/LSTM"
# the encoder's convolutions: layer, STFT columns in, stride
ENCODER = (("encoder.0", 4, 1), ("encoder.1", 4, 2), ("encoder.2", 2, 2), ("encoder.3", 1, 1))


class Graph:
    """New nodes and initializers, named under one prefix."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attributes: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attributes))
        return name

    def slice(self, x: str, start: int, end: int, axis: int, name: str, step: int = 1) -> str:
        bounds = [self.const(f"{name}/{part}", np.array([v], np.int64))
                  for part, v in (("start", start), ("end", end), ("axis", axis), ("step", step))]
        return self.op("Slice", [x, *bounds], name)

    def reshape(self, x: str, shape: tuple[int, ...], name: str) -> str:
        return self.op("Reshape", [x, self.const(f"{name}/shape", np.array(shape, np.int64))], name)

    def magnitude(self, padded: str) -> str:
        """|STFT| of each frame's columns 1..4, time-major [frames, 4, 129]: one MatMul."""
        basis = self.weights["stft.forward_basis_buffer"]  # [258, 1, 256]
        halves = [self.reshape(self.slice(padded, STFT_HOP * (1 + j), STFT_HOP * (1 + j + STFT_COLUMNS), 1,
                                          f"/mm/stft/half{j}"), (0, STFT_COLUMNS, STFT_HOP), f"/mm/stft/half{j}/r")
                  for j in range(2)]
        columns = self.op("Concat", halves, "/mm/stft/columns", axis=2)
        spectrum = self.op("MatMul", [columns, self.const("/mm/stft/basis", basis[:, 0, :].T)], "/mm/stft/spectrum")
        two = self.const("/mm/stft/two", np.array(2.0, np.float32))
        squares = [self.op("Pow", [self.slice(spectrum, lo, lo + STFT_BINS, 2, f"/mm/stft/{part}"), two],
                           f"/mm/stft/{part}2") for part, lo in (("re", 0), ("im", STFT_BINS))]
        return self.op("Sqrt", [self.op("Add", squares, "/mm/stft/power")], "/mm/stft/magnitude")

    def conv(self, x: str, layer: str, columns: int, stride: int) -> str:
        """Conv1d (kernel 3, padding 1) + ReLU on time-major [frames, columns, channels]."""
        weight, bias = self.weights[f"{layer}.weight"], f"{layer}.bias"  # weight [out, in, 3]
        _, in_channels, kernel = weight.shape
        name = f"/mm/{layer}"
        if columns == 1:  # one column, padded on both sides: only the middle tap meets data
            taps, im2col = [1], x
        elif columns == 2 and stride == 2:  # one output over (padding, column 0, column 1)
            taps, im2col = [1, 2], self.reshape(x, (0, 1, 2 * in_channels), f"{name}/im2col")
        else:
            out_columns = (columns + 2 - kernel) // stride + 1
            padded = self.op("Pad", [x, self.const(f"{name}/pads", np.array([0, 1, 0, 0, 1, 0], np.int64))],
                             f"{name}/padded")
            taps = list(range(kernel))
            im2col = self.op("Concat", [self.slice(padded, k, k + stride * (out_columns - 1) + 1, 1, f"{name}/tap{k}",
                                                   stride) for k in taps], f"{name}/im2col", axis=2)
        matrix = np.concatenate([weight[:, :, k].T for k in taps])  # [taps * in, out], tap-major like im2col
        y = self.op("MatMul", [im2col, self.const(f"{name}/weight", matrix)], f"{name}/matmul")
        return self.op("Relu", [self.op("Add", [y, bias], f"{name}/bias")], f"{name}/relu")


def rewrite(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    names = [node.name for node in graph.node]
    if FIRST_REPLACED not in names or LSTM not in names:
        raise SystemExit("not the Silero VAD sequence graph this script was written for")
    new = Graph({init.name: numpy_helper.to_array(init) for init in graph.initializer})
    x = new.magnitude("/stft/padding/Pad_output_0")  # the reflect-padded frames, [frames, 832]
    for layer, columns, stride in ENCODER:
        x = new.conv(x, layer, columns, stride)
    # [frames, 1, 128] is the LSTM's [sequence, batch, input] as it is: no transpose
    first, lstm = names.index(FIRST_REPLACED), names.index(LSTM)
    kept = list(graph.node)
    kept[lstm].input[0] = x
    del graph.node[:]
    graph.node.extend(kept[:first] + new.nodes + kept[lstm:])
    graph.initializer.extend(new.initializers)
    used = {name for node in graph.node for name in node.input}
    for init in [init for init in graph.initializer if init.name not in used]:
        graph.initializer.remove(init)
    onnx.checker.check_model(model)
    return model


def probabilities(model: bytes, batches: list[np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    h = c = np.zeros((1, 1, 128), dtype=np.float32)
    probs = []
    for batch in batches:
        p, h, c = session.run(["speech_probs", "hn", "cn"], {"input": batch, "h": h, "c": c})
        probs.append(p)
    return np.concatenate(probs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("original", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    data = args.original.read_bytes()
    if hashlib.sha256(data).hexdigest() != ORIGINAL_SHA256:
        raise SystemExit(f"{args.original} is not the silero-vad 6.2.3 sequence model (sha256 differs)")
    rewritten = rewrite(onnx.load_from_string(data)).SerializeToString()
    rng = np.random.default_rng(0)  # loud and quiet noise, and a tone, in calls of 1 to 16 frames
    batches = [(scale * rng.standard_normal((n, 576))).astype(np.float32)
               for scale in (0.3, 0.01) for n in (16, 15, 1, 16)]
    batches.append(0.5 * np.sin(np.arange(16 * 576) * 0.07).reshape(16, 576).astype(np.float32))
    gap = float(np.abs(probabilities(rewritten, batches) - probabilities(data, batches)).max())
    if gap > TOLERANCE:
        raise SystemExit(f"rewritten model differs from the original by {gap:.3g} (> {TOLERANCE})")
    args.output.write_bytes(rewritten)
    print(f"{args.output}: {len(rewritten)} bytes, sha256 {hashlib.sha256(rewritten).hexdigest()}, "
          f"largest probability difference from the original {gap:.2g}")
    write_reference(args.original)
    return 0


def write_reference(original: Path) -> None:
    """The original model's probabilities on each fixture clip, as the app's front end runs it."""
    cfg = EmotionClassifier().features
    detector = SpeechDetector(original)
    clips = sorted(p for p in FIXTURES.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    probs = {p.relative_to(FIXTURES).as_posix(): offline_front_end(load_audio(p, cfg.sample_rate_hz), cfg, detector)
             .frame_probs for p in clips}
    np.savez_compressed(REFERENCE, **probs)
    print(f"{REFERENCE.relative_to(ROOT)}: the original's probabilities on {len(probs)} clips")


if __name__ == "__main__":
    raise SystemExit(main())
