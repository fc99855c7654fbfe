"""The command line as users and scripts drive it: records, formats, analysis, and bad input."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from tests.conftest import assert_one_line_error, fixture_clips, run_cli

RECORD_KEYS = {"t", "speech", "label", "probs", "level_db", "latency_ms"}


def test_headless_file_fast_prints_a_record_per_hop(model_path: Path) -> None:
    clip = fixture_clips()[0]
    proc = run_cli("--model", str(model_path), "--headless", "--input", str(clip), "--fast")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    duration = soundfile.info(str(clip)).duration
    assert len(records) == int((duration - 2.0) / 0.5) + 1
    assert all(set(r) >= RECORD_KEYS for r in records)
    assert np.allclose(np.diff([r["t"] for r in records]), 0.5)
    speech = [r for r in records if r["speech"]]
    assert speech and all(r["label"] in r["probs"] and abs(sum(r["probs"].values()) - 1) < 0.02 for r in speech)
    assert all(r["label"] is None and r["probs"] is None for r in records if not r["speech"])
    assert f"windows: {len(records)}" in proc.stderr and "mean latency" in proc.stderr


def test_headless_csv_to_file_with_duration(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    clip = fixture_clips()[0]
    proc = run_cli("--model", str(model_path), "--headless", "--input", str(clip), "--fast",
                   "--format", "csv", "--out", str(out), "--duration", "3")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [float(r["t"]) for r in rows] == [2.0, 2.5, 3.0]
    assert {"t", "speech", "label", "level_db", "latency_ms", "p_angry"} <= set(rows[0])


def test_analyze_json_and_no_speech(model_path: Path, tmp_path: Path) -> None:
    for clip in fixture_clips()[:3]:
        shutil.copy(clip, tmp_path / clip.name)
    sub = tmp_path / "nested"
    sub.mkdir()
    soundfile.write(sub / "silence.wav", np.zeros(48000, dtype=np.float32), 48000)
    proc = run_cli("--model", str(model_path), "analyze", "--json", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    reports = {Path(r["file"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert len(reports) == 4
    assert reports["silence.wav"]["label"] is None and reports["silence.wav"]["speech_ratio"] == 0
    for clip in fixture_clips()[:3]:
        r = reports[clip.name]
        assert r["label"] in r["probs"] and r["windows"] >= 1 and r["speech_ratio"] > 0


def test_analyze_table_skips_unreadable_files(model_path: Path, tmp_path: Path) -> None:
    clip = fixture_clips()[0]
    shutil.copy(clip, tmp_path / clip.name)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (tmp_path / "empty.flac").write_bytes(b"")
    proc = run_cli("--model", str(model_path), "analyze", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert clip.name in proc.stdout
    assert proc.stderr.count("skipped:") == 2
    assert "1 file analysed" in proc.stderr and "2 unreadable" in proc.stderr
    assert "Traceback" not in proc.stderr
    nothing = run_cli("--model", str(model_path), "analyze", str(tmp_path / "broken.wav"), str(tmp_path / "empty.flac"))
    assert_one_line_error(nothing, "none of the 2 files could be read")
    assert nothing.stdout.count("\n") <= 1  # the table's header at most


def test_missing_model(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("--model", str(tmp_path / "nope.tflite"), "analyze", str(fixture_clips()[0])),
                          "model not found")


def test_corrupt_model(model_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 10)
    shutil.copy(model_path.with_suffix(".json"), bad.with_suffix(".json"))
    assert_one_line_error(run_cli("--model", str(bad), "analyze", str(fixture_clips()[0])), "not a valid TFLite")


def test_model_without_metadata(model_path: Path, tmp_path: Path) -> None:
    lone = tmp_path / "lone.tflite"
    shutil.copy(model_path, lone)
    assert_one_line_error(run_cli("--model", str(lone), "--headless", "--input", str(fixture_clips()[0])),
                          "metadata not found")


def test_metadata_that_does_not_match_the_tensors(model_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.tflite"
    shutil.copy(model_path, other)
    meta = json.loads(model_path.with_suffix(".json").read_text())
    meta["features"]["window_s"] = 1.5  # 147 frames, not the tensor's 197
    other.with_suffix(".json").write_text(json.dumps(meta))
    assert_one_line_error(run_cli("--model", str(other), "analyze", str(fixture_clips()[0])),
                          "does not match its metadata")


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 100])
def test_unreadable_input_file(model_path: Path, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    assert_one_line_error(run_cli("--model", str(model_path), "--headless", "--input", str(bad)), "bad.wav")


def test_missing_input_file(model_path: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("--model", str(model_path), "--headless", "--input", str(tmp_path / "x.wav")),
                          "not found")


def test_unknown_device(model_path: Path) -> None:
    assert_one_line_error(run_cli("--model", str(model_path), "--headless", "--device", "no-such-microphone-xyz"),
                          "no-such-microphone-xyz")


def test_bad_options(model_path: Path) -> None:
    assert_one_line_error(run_cli("--model", str(model_path), "--headless", "--fast"), "--fast")
    assert_one_line_error(run_cli("--model", str(model_path), "--headless", "--input", str(fixture_clips()[0]),
                                  "--hop", "0.123"), "hop_s")


def test_a_44k_stereo_file_replays_like_its_16k_mono_original(model_path: Path, tmp_path: Path) -> None:
    """The replay hands the file's own rate and channels to the worker, which mixes down and
    resamples as for a USB microphone; the verdicts match the 16 kHz mono original."""
    clip = fixture_clips()[4]
    audio, rate = soundfile.read(str(clip), dtype="float32")
    stereo = soxr.resample(np.stack([audio, audio], axis=1), rate, 44100)
    soundfile.write(tmp_path / "stereo.wav", stereo, 44100, subtype="FLOAT")
    runs = []
    for path in (clip, tmp_path / "stereo.wav"):
        proc = run_cli("--model", str(model_path), "--headless", "--input", str(path), "--fast", "--smoothing", "0")
        assert proc.returncode == 0, proc.stderr
        runs.append([json.loads(line) for line in proc.stdout.splitlines()])
    original, converted = runs
    assert [r["t"] for r in original] == [r["t"] for r in converted]
    assert [r["speech"] for r in original] == [r["speech"] for r in converted]
    for a, b in zip(original, converted, strict=True):
        if a["speech"]:
            assert max(abs(a["probs"][k] - b["probs"][k]) for k in a["probs"]) < 0.1


def test_quiet_recording_is_silence_until_gate_db_is_lowered(model_path: Path, tmp_path: Path) -> None:
    clip = fixture_clips()[4]
    audio, rate = soundfile.read(str(clip), dtype="float32")
    peak_at_90_dbfs = 10 ** (-90 / 20) / np.abs(audio).max()  # a microphone all but off
    soundfile.write(tmp_path / "quiet.wav", audio * peak_at_90_dbfs, rate, subtype="FLOAT")
    speech = {}
    for gate in (None, "-115"):
        extra = ("--gate-db", gate) if gate else ()
        proc = run_cli("--model", str(model_path), "--headless", "--input", str(tmp_path / "quiet.wav"), "--fast",
                       *extra)
        assert proc.returncode == 0, proc.stderr
        speech[gate] = sum(json.loads(line)["speech"] for line in proc.stdout.splitlines())
    assert speech[None] == 0 and speech["-115"] > 0, speech


@pytest.mark.slow
def test_analyze_jobs_give_the_same_reports_in_input_order(model_path: Path, tmp_path: Path) -> None:
    """Files of several rates (RAVDESS 16 kHz, TESS and SAVEE at their own) in a shuffled
    order: two processes give exactly one process's output, in the order the files were given."""
    files = [str(p) for p in fixture_clips()]
    files = files[1::2] + files[::2]
    one = run_cli("--model", str(model_path), "analyze", "--json", "--jobs", "1", *files)
    two = run_cli("--model", str(model_path), "analyze", "--json", "--jobs", "2", *files)
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    assert [json.loads(line)["file"] for line in one.stdout.splitlines()] == files
    assert two.stdout == one.stdout


def test_analyze_shows_a_progress_bar_on_a_terminal_only(model_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys
    import threading

    from tests.conftest import REPO

    files = [str(p) for p in fixture_clips()[:10]]  # ten files: enough to want a bar
    leader, follower = pty.openpty()
    terminal = bytearray()

    def read_terminal() -> None:  # read as it comes: a full pty would block the writer
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: every writer closed its end
                return
            if not chunk:
                return
            terminal.extend(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    with subprocess.Popen([sys.executable, "-m", "ser_live", "--model", str(model_path), "analyze", "--json",
                           "--jobs", "1", *files], cwd=REPO, stdout=subprocess.PIPE, stderr=follower) as proc:
        os.close(follower)
        stdout, _ = proc.communicate(timeout=120)
    reader.join(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    assert b"\r[" in terminal and b"100% of" in terminal  # drawn in place, and to the end
    assert [json.loads(line)["file"] for line in stdout.decode().splitlines()] == files  # stdout: records only
    piped = run_cli("--model", str(model_path), "analyze", "--json", "--jobs", "1", *files)
    assert "\r" not in piped.stderr and "%" not in piped.stderr  # not a terminal: no bar
