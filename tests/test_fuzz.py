"""Random and broken input, for a bounded time: random and truncated bytes, bit flips, headers
claiming extreme sample rates and channel counts, to ``analyze`` and to replay; random changes
to a model's JSON, to model loading. Whatever comes in, the process ends (no hang), with exit
status 0 or 2 only, and nothing but ser-live's own lines on stderr (no traceback, no library
noise). The cases come from a fixed seed, so a failure is reproduced by running the test again."""

from __future__ import annotations

import copy
import json
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from tests.conftest import fixture_clips, only_our_lines, run_cli

SEED = 20260909
REPLAYED = 12  # of the fuzzed files, how many are also replayed (each replay is a process)
MODEL_VARIANTS = 12
HANG_GUARD_S = 120  # per process: longer means it hung


def wav_header(rate_hz: int, channels: int, bits: int, fmt: int, data: bytes) -> bytes:
    """A WAV file with whatever header values it is given, valid or not."""
    block = max(1, channels * bits // 8)
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate_hz & 0xFFFFFFFF, (rate_hz * block) & 0xFFFFFFFF,
                            block & 0xFFFF, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + b"data" + struct.pack("<I", len(data))
    return b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data


def fuzz_files(folder: Path, rng: np.random.Generator) -> list[Path]:
    clip, rate = soundfile.read(str(fixture_clips()[0]), dtype="float32")
    valid = {}
    for ext, kwargs in ((".wav", {"subtype": "PCM_16"}), (".flac", {}), (".ogg", {}), (".mp3", {"format": "MP3"})):
        path = folder / f"valid{ext}"
        soundfile.write(path, clip, rate, **kwargs)
        valid[ext] = path.read_bytes()
    cases: dict[str, bytes] = {}
    for i in range(6):
        ext = [".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus"][i]
        cases[f"random{i}{ext}"] = rng.bytes(int(rng.integers(0, 6000)))
    for ext, data in valid.items():
        for j in range(3):
            cases[f"truncated{j}{ext}"] = data[: int(rng.integers(0, len(data)))]
        flipped = bytearray(data)
        for k in rng.integers(0, len(data), 40):
            flipped[k] ^= 1 << int(rng.integers(0, 8))
        cases[f"flipped{ext}"] = bytes(flipped)
        cases[f"garbage-after-header{ext}"] = data[:64] + rng.bytes(4000)
    pcm = (clip[:16000] * 32767).astype("<i2").tobytes()
    for rate_hz in (1, 999, 768001, 4_000_000_000, 0):
        cases[f"rate-{rate_hz}.wav"] = wav_header(rate_hz, 1, 16, 1, pcm)
    for channels in (0, 65, 1000, 65535):
        cases[f"channels-{channels}.wav"] = wav_header(16000, channels, 16, 1, pcm)
    cases["float-bits-13.wav"] = wav_header(16000, 1, 13, 3, pcm)
    cases["format-99.wav"] = wav_header(16000, 1, 16, 99, pcm)
    noise = rng.standard_normal(16000 * 3).astype(np.float32) * 1e6  # far beyond full scale
    cases["loud-float.wav"] = wav_header(16000, 1, 32, 3, noise.tobytes())
    for name in valid:
        (folder / f"valid{name}").unlink()
    paths = []
    for name, data in cases.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def check(proc: Any) -> None:  # noqa: ANN401
    assert proc.returncode in (0, 2), proc.stderr
    only_our_lines(proc.stderr)


@pytest.mark.slow
def test_fuzzed_audio_to_analyze_and_replay(model_path: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    files = fuzz_files(tmp_path, rng)
    started = time.monotonic()
    analyze = run_cli("--model", str(model_path), "analyze", "--json", "--jobs", "1", str(tmp_path),
                      timeout=HANG_GUARD_S * 4)
    check(analyze)
    analysed = [json.loads(line) for line in analyze.stdout.splitlines()]
    skipped = analyze.stderr.count("ser-live: skipped:")
    assert len(analysed) + skipped == len(files), analyze.stderr  # every file answered for, once
    for path in rng.choice(files, REPLAYED, replace=False):
        check(run_cli("--model", str(model_path), "--headless", "--input", str(path), "--fast",
                      timeout=HANG_GUARD_S))
    print(f"fuzz: {len(files)} files analysed, {REPLAYED} replayed in {time.monotonic() - started:.1f} s")


def mutate(meta: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One random change somewhere in the JSON tree: a key dropped, or a value replaced by
    another JSON value of a random kind."""
    meta = copy.deepcopy(meta)
    node: Any = meta
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = keys[int(rng.integers(len(keys)))]
        child = node[key]
        if isinstance(child, dict | list) and child and rng.random() < 0.6:
            node = child
            continue
        break
    replacements = [None, True, -1, 0, 2**63, 1e308, -0.5, "", "x" * 10, [], {}, [1, "a"], {"a": 1}, float("nan")]
    if isinstance(node, dict) and rng.random() < 0.3:
        del node[key]
    else:
        node[key] = replacements[int(rng.integers(len(replacements)))]
    return meta


@pytest.mark.slow
def test_fuzzed_model_json_to_model_loading(model_path: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    meta = json.loads(model_path.with_suffix(".json").read_text())
    model = tmp_path / "fuzzed.tflite"
    shutil.copy(model_path, model)
    texts = [json.dumps(mutate(meta, rng)) for _ in range(MODEL_VARIANTS - 3)]
    whole = json.dumps(meta)
    texts += [whole[: int(rng.integers(len(whole)))], rng.bytes(300).decode("latin-1"), "[]"]
    started = time.monotonic()
    for text in texts:
        model.with_suffix(".json").write_text(text)
        check(run_cli("--model", str(model), "analyze", str(fixture_clips()[0]), timeout=HANG_GUARD_S))
    print(f"fuzz: {len(texts)} model JSON variants loaded in {time.monotonic() - started:.1f} s")
