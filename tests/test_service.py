"""The headless appliance: rotating record files, the systemd unit, and a run that a restart revives.

The unit's restart policy is systemd's job; what ser-live must do for it is end with exit status 2
and one line when the sound server goes away, and capture again when the same command is run after
the server is back. That is tested here with a real PulseAudio server, killed and started again.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ser_live.processor import WindowResult
from ser_live.rotating import FILE_PREFIX, RotatingFileSink
from tests.conftest import REPO

UNIT = REPO / "systemd" / "ser-live@.service"
LABELS = ("calm", "happy")


def _result(t: float) -> WindowResult:
    return WindowResult(t=t, speech=True, label="happy", confidence=0.75, probs={"calm": 0.25, "happy": 0.75},
                        level_db=-20.0, speech_ratio=0.5, frame_probs=np.zeros(0, np.float32), compute_ms=1.0)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_rotating_sink_starts_new_files_and_keeps_the_newest(tmp_path: Path, fmt: str) -> None:
    events: list[str] = []
    sink = RotatingFileSink(tmp_path, fmt, LABELS, max_bytes=400, keep_files=3, log=events.append)
    for i in range(60):
        sink(_result(i * 0.5))
    sink.close()
    files = sorted(tmp_path.glob(f"{FILE_PREFIX}*.{fmt}"))
    assert len(files) == 3 and len(events) > 3  # more were written; the oldest were removed
    assert all(event.startswith("writing ") for event in events)
    assert events[-1] == f"writing {files[-1]}"
    times: list[float] = []
    for path in files:
        text = path.read_text()
        if fmt == "csv":
            rows = list(csv.DictReader(text.splitlines()))  # every file has its own header
            times += [float(row["t"]) for row in rows]
            assert all(row["label"] == "happy" for row in rows)
        else:
            times += [json.loads(line)["t"] for line in text.splitlines()]
        # a file is closed on the record that takes it past the limit: never much beyond it
        assert path == files[-1] or 400 <= path.stat().st_size < 400 + 200
    assert times == [i * 0.5 for i in range(60 - len(times), 60)]  # the newest records, in order, none lost


def test_a_second_run_in_the_same_second_does_not_overwrite(tmp_path: Path) -> None:
    paths = []
    for t in (0.0, 1.0):
        sink = RotatingFileSink(tmp_path, "jsonl", LABELS, max_bytes=10_000, keep_files=5, log=lambda _: None)
        paths.append(sink.path)
        sink(_result(t))
        sink.close()
    assert paths[0] != paths[1] and sorted(tmp_path.iterdir()) == paths
    assert [p.read_text() for p in paths] == [json.dumps(_result(t).to_record()) + "\n" for t in (0.0, 1.0)]


def test_a_folder_that_vanishes_mid_run_is_an_output_error_naming_it(tmp_path: Path) -> None:
    from ser_live.errors import OutputError

    folder = tmp_path / "rec"
    sink = RotatingFileSink(folder, "jsonl", LABELS, max_bytes=200, keep_files=3, log=lambda _: None)
    sink(_result(0.0))
    shutil.rmtree(folder)
    with pytest.raises(OutputError, match=f"cannot write records in {folder}: No such file or directory"):
        for i in range(10):  # the record that passes 200 bytes starts the next file
            sink(_result(i * 0.5))
    sink.close()


def test_rotation_options_are_checked(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    proc = run_cli("--headless", "--input", str(REPO / "assets/demo/ser-live-demo.flac"), "--fast",
                   "--out-dir", str(tmp_path), "--keep-files", "0")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ser-live: error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "--keep-files" in errors[0], proc.stderr


def _installed_unit(folder: Path) -> Path:
    """The unit as scripts/install-service.sh writes it for this checkout, as instance USB."""
    ser_live = Path(sys.executable).parent / "ser-live"
    text = UNIT.read_text().replace("/opt/ser-live/.venv/bin/ser-live", str(ser_live))
    text = text.replace("/opt/ser-live", str(REPO)).replace("User=pi", "User=root")
    path = folder / "ser-live@USB.service"
    path.write_text(text)
    return path


def test_unit_file_verifies_without_a_warning(tmp_path: Path) -> None:
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(_installed_unit(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    # and verify does catch a broken unit, so the pass above means something
    broken = _installed_unit(tmp_path)
    broken.write_text(broken.read_text().replace("Restart=always", "Restart=sometimes"))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True,
                          timeout=60)
    assert "restart specifier" in proc.stderr, proc.stderr


def test_install_script_writes_the_unit_for_this_checkout() -> None:
    proc = subprocess.run(["bash", str(REPO / "scripts/install-service.sh"), "--print", "USB Audio"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"WorkingDirectory={REPO}\n" in proc.stdout
    assert f"ExecStart={REPO}/.venv/bin/ser-live --headless" in proc.stdout
    assert "/opt/ser-live" not in proc.stdout.replace("Documentation=file://", "")
    assert "enable --now ser-live@USB\\x20Audio.service" in proc.stderr


def _run_service_command(model_path: Path, pulse, out_dir: Path) -> subprocess.Popen[str]:  # noqa: ANN001
    """The unit's ExecStart, with the test's model and PulseAudio server."""
    return subprocess.Popen(
        [sys.executable, "-m", "ser_live", "--model", str(model_path), "--headless", "--device", "pulse",
         "--out-dir", str(out_dir)],
        cwd=REPO, env=pulse.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_records(proc: subprocess.Popen[str], out_dir: Path, files_before: int) -> Path:
    deadline = time.monotonic() + 30
    while True:
        files = sorted(out_dir.glob(f"{FILE_PREFIX}*.jsonl"))
        if len(files) > files_before and files[-1].stat().st_size > 0:
            return files[-1]
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no record from live capture"
        time.sleep(0.1)


@pytest.mark.slow
def test_sound_server_loss_ends_with_one_line_and_the_restarted_command_captures_again(
    model_path: Path, pulse, tmp_path: Path  # noqa: ANN001
) -> None:
    with _run_service_command(model_path, pulse, tmp_path) as proc:
        first = _wait_for_records(proc, tmp_path, 0)
        pulse.kill()
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2, stderr  # systemd's Restart=always starts it again
    assert "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if line.startswith("ser-live: error:")]) == 1, stderr
    assert f"ser-live: writing {first}" in stderr.splitlines()
    # one line per event, for the journal: start, the file, the summary, the error; no C-library noise
    lines = stderr.splitlines()
    assert len(lines) == 4 and all(line.startswith("ser-live: ") for line in lines), stderr
    assert "pulse" in lines[0] and "windows:" in lines[2], stderr
    records_before = first.read_text().splitlines()
    assert records_before and all(json.loads(line)["t"] > 0 for line in records_before)

    pulse.start()  # the sound server is back; systemd runs the same command again
    with _run_service_command(model_path, pulse, tmp_path) as proc:
        second = _wait_for_records(proc, tmp_path, 1)
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "windows:" in stderr, stderr
    assert second != first and first.read_text().splitlines() == records_before  # nothing overwritten
    assert json.loads(second.read_text().splitlines()[0])["t"] > 0
