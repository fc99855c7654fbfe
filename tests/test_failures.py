"""Trying to break it, as a new user would: every way a run can go wrong ends in one line on
stderr and exit status 2 (a reader that went away: quietly, 141), without a traceback or a
library's noise, and nothing the input holds is lost. One test per case of issue 9's table,
each through the real command on real files (and real PulseAudio where a device is involved)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from ser_live.errors import AudioFileError
from tests.conftest import REPO, assert_one_line_error, fixture_clips, only_our_lines, run_cli

HANG_GUARD_S = 300  # a process still running after this has hung: a failure, not a timing claim


def speech(rate_hz: int = 16000) -> np.ndarray:
    """The first four fixture clips back to back (about 14 s), float32 mono at ``rate_hz``."""
    clips = []
    for path in fixture_clips()[:4]:
        audio, rate = soundfile.read(str(path), dtype="float32")
        clips.append(soxr.resample(audio, rate, rate_hz) if rate != rate_hz else audio)
    return np.concatenate(clips)


def write_long(path: Path, seconds: float, rate_hz: int, every_s: float | None = None) -> Path:
    """``seconds`` of audio written block by block: speech throughout, or with ``every_s`` the
    ~14 s of speech at the start of every ``every_s`` seconds and silence between (a long
    recording that stays small as FLAC)."""
    clip = speech(rate_hz)
    block_s = every_s or len(clip) / rate_hz
    block = np.zeros(round(block_s * rate_hz), np.float32)
    n = min(len(block), len(clip))
    block[:n] = clip[:n]
    total = round(seconds * rate_hz)
    with soundfile.SoundFile(str(path), "w", samplerate=rate_hz, channels=1, subtype="PCM_16") as f:
        written = 0
        while written < total:
            part = block[: total - written]
            f.write(part)
            written += len(part)
    return path


def start(*args: str, **kwargs) -> subprocess.Popen[str]:  # noqa: ANN003
    return subprocess.Popen([sys.executable, "-m", "ser_live", *args], cwd=REPO, text=True,
                            stderr=subprocess.PIPE, **kwargs)


@pytest.mark.slow
def test_a_reader_that_goes_away_ends_the_run_quietly(model_path: Path, tmp_path: Path) -> None:
    """``ser-live --headless --input F --fast | head -1``: 300 s of speech make ~140 kB of
    records, more than a pipe holds, so the worker is writing when the reader leaves."""
    long = write_long(tmp_path / "long.wav", 300, 16000)
    with start("--model", str(model_path), "--headless", "--input", str(long), "--fast",
               stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = json.loads(proc.stdout.readline())
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.wait(timeout=HANG_GUARD_S)
    assert first["t"] == 2.0
    assert proc.returncode == 141, stderr  # 128 + SIGPIPE, as the shell reports a tool a closed pipe ended
    assert stderr.splitlines() == [f"ser-live: file long.wav (fast), model {model_path.stem}"], stderr


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("where", ["--out", "stdout"])
def test_a_full_disk_is_one_line(model_path: Path, fmt: str, where: str) -> None:
    args = ["--model", str(model_path), "--headless", "--input", str(fixture_clips()[0]), "--fast", "--format", fmt]
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "ser_live", *args, *(["--out", "/dev/full"] if where == "--out"
                                                                          else [])],
                              cwd=REPO, text=True, stdout=full, stderr=subprocess.PIPE, timeout=HANG_GUARD_S)
    assert_one_line_error(proc, "cannot write", "No space left on device")


def test_a_full_disk_under_analyze_is_one_line(model_path: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "ser_live", "--model", str(model_path), "analyze",
                               str(fixture_clips()[0])], cwd=REPO, text=True, stdout=full, stderr=subprocess.PIPE,
                              timeout=HANG_GUARD_S)
    assert_one_line_error(proc, "No space left on device")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--duration", "nan"), ("--duration", "inf"), ("--duration", "0"), ("--duration", "-1"),
     ("--smoothing", "nan"), ("--smoothing", "inf"), ("--smoothing", "-1"), ("--gate-db", "nan"),
     ("--gate-db", "10"), ("--hop", "nan"), ("--hop", "0")],
)
def test_numbers_are_checked_where_they_are_parsed(model_path: Path, option: str, value: str) -> None:
    proc = run_cli("--model", str(model_path), "--headless", "--input", str(fixture_clips()[0]), "--fast",
                   f"{option}={value}")
    assert_one_line_error(proc, option, value)
    assert proc.stdout == ""


@pytest.mark.parametrize("value", ["0", "-48000", "nan", "10000000"])
def test_a_device_rate_is_checked_where_it_is_parsed(model_path: Path, value: str) -> None:
    assert_one_line_error(run_cli("--model", str(model_path), "--headless", f"--device-rate={value}"),
                          "--device-rate", value)


@pytest.mark.parametrize(
    ("args", "needle"),
    [(("--headless", "--input", "CLIP", "--device-rate", "48000"), "--device-rate"),
     (("--out", "x.jsonl"), "--out"),
     (("--headless", "--input", "CLIP", "--screenshot", "x.png"), "--screenshot"),
     (("--input", "CLIP", "analyze", "CLIP"), "analyze"),
     (("analyze", "--jobs", "0", "CLIP"), "--jobs")],
)
def test_options_that_mean_nothing_together(model_path: Path, args: tuple[str, ...], needle: str) -> None:
    clip = str(fixture_clips()[0])
    proc = run_cli("--model", str(model_path), *(clip if a == "CLIP" else a for a in args))
    assert_one_line_error(proc, needle)


def test_non_finite_samples_are_refused_by_replay_and_analyze(model_path: Path, tmp_path: Path) -> None:
    audio = speech()
    audio[len(audio) // 2] = np.nan
    audio[len(audio) // 3] = np.inf
    bad = tmp_path / "nan.wav"
    soundfile.write(bad, audio, 16000, subtype="FLOAT")
    replay = run_cli("--model", str(model_path), "--headless", "--input", str(bad), "--fast")
    assert_one_line_error(replay, "nan.wav", "non-finite")
    analyze = run_cli("--model", str(model_path), "analyze", str(bad))
    assert_one_line_error(analyze, "could not be read")
    assert "non-finite" in analyze.stderr


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 14,400 windows through the VAD and features: minutes on a busy 2-core machine
def test_analyze_streams_a_two_hour_file_in_little_memory(model_path: Path, tmp_path: Path) -> None:
    """A 2-hour 22.05 kHz recording (speech at the start of every 30 s) is analysed in blocks:
    the process's peak RSS stays far below what holding it would take (635 MB as float32)."""
    long = write_long(tmp_path / "two-hours.flac", 2 * 3600, 22050, every_s=30)
    measure = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); sys.exit(done.returncode)")
    proc = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "ser_live", "--model", str(model_path),
                           "analyze", "--json", str(long)], cwd=REPO, capture_output=True, text=True,
                          timeout=HANG_GUARD_S * 4)
    assert proc.returncode == 0, proc.stderr
    record_line, peak_mb = proc.stdout.splitlines()
    print(f"analyze of a 2-hour 22.05 kHz file: peak RSS {peak_mb} MB")
    report = json.loads(record_line)
    assert report["duration_s"] == 7200.0 and report["windows"] == (7200 - 2) * 2 + 1
    assert 0 < report["speech_ratio"] < 1  # speech and silence both found, all the way through
    assert int(peak_mb) < 250


@pytest.mark.slow
def test_sigterm_during_a_resampled_replay_leaves_no_leak_messages(model_path: Path, tmp_path: Path) -> None:
    audio = speech()
    soundfile.write(tmp_path / "44k.wav", soxr.resample(audio, 16000, 44100), 44100)
    with start("--model", str(model_path), "--headless", "--input", str(tmp_path / "44k.wav"),
               stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["t"] == 2.0  # replaying, in real time
        proc.terminate()
        stderr = proc.stderr.read()
        proc.wait(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, stderr
    only_our_lines(stderr)  # before: ~18 lines of "nanobind: leaked ... soxr"
    assert "windows:" in stderr


@pytest.mark.slow
def test_a_closed_terminal_ends_a_run_cleanly_unless_started_with_nohup(model_path: Path, tmp_path: Path) -> None:
    """SIGHUP (the terminal a run was started from closed) ends it like Ctrl-C: summary, exit
    130, every record whole. Its default action killed the process on the spot. Under ``nohup``
    (SIGHUP ignored) the run goes on to its end."""
    clip = tmp_path / "speech.wav"
    soundfile.write(clip, speech(), 16000)

    def run(out: Path, ignore_hangup: bool) -> tuple[int, str, list[dict]]:
        def preexec() -> None:  # set either way: the test itself may run under nohup
            signal.signal(signal.SIGHUP, signal.SIG_IGN if ignore_hangup else signal.SIG_DFL)

        with start("--model", str(model_path), "--headless", "--input", str(clip), "--duration", "4",
                   "--out", str(out), preexec_fn=preexec) as proc:
            deadline = time.monotonic() + HANG_GUARD_S
            while (not out.exists() or not out.read_text()) and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGHUP)
            assert proc.stderr is not None
            stderr = proc.stderr.read()
            proc.wait(timeout=HANG_GUARD_S)
        return proc.returncode, stderr, [json.loads(line) for line in out.read_text().splitlines()]

    status, stderr, records = run(tmp_path / "hup.jsonl", ignore_hangup=False)
    assert status == 130 and "windows:" in stderr, stderr
    only_our_lines(stderr)
    assert records and records[-1]["t"] < 4.0
    status, stderr, records = run(tmp_path / "nohup.jsonl", ignore_hangup=True)
    assert status == 0, stderr
    assert records[-1]["t"] == 4.0


def test_mp3_replay_and_analysis_keep_decoder_noise_off_stderr(model_path: Path, tmp_path: Path) -> None:
    mp3 = tmp_path / "clip.mp3"
    soundfile.write(mp3, speech(), 16000, format="MP3")  # libmpg123 complains about these frames, decodes them fine
    replay = run_cli("--model", str(model_path), "--headless", "--input", str(mp3), "--fast")
    assert replay.returncode == 0, replay.stderr
    assert len(replay.stdout.splitlines()) > 10
    only_our_lines(replay.stderr)
    analyze = run_cli("--model", str(model_path), "analyze", str(mp3))
    assert analyze.returncode == 0 and "clip.mp3" in analyze.stdout
    only_our_lines(analyze.stderr)


@pytest.mark.parametrize(
    ("change", "key"),
    [(lambda m: m.update(features={}), "features.sample_rate_hz"),
     (lambda m: m.update(labels="abcdefgh"), "labels"),
     (lambda m: m["features"].update(n_mels="64"), "features.n_mels"),
     (lambda m: m["features"].update(hop_length=0), "hop_length"),
     (lambda m: m["input"].update(scale=float("nan")), "input.scale"),
     (lambda m: m["output"].pop("zero_point"), "output.zero_point"),
     (lambda m: m.update(labels=["a", "a"]), "labels"),
     (lambda m: m.update(calibration={"temperature": "x"}), "calibration.temperature"),
     (lambda m: m.update(calibration={"bogus": 1}), "calibration.bogus"),
     (lambda m: m.update(calibration=[1]), "calibration"),
     (lambda m: m.update(adaptation={"mean": []}), "adaptation.mean")],
)
def test_model_json_is_checked_against_its_schema(model_path: Path, tmp_path: Path, change, key: str) -> None:  # noqa: ANN001
    model = tmp_path / "m.tflite"
    shutil.copy(model_path, model)
    meta = json.loads(model_path.with_suffix(".json").read_text())
    change(meta)
    model.with_suffix(".json").write_text(json.dumps(meta))
    assert_one_line_error(run_cli("--model", str(model), "analyze", str(fixture_clips()[0])), "m.json", key)


def test_a_fifo_a_folder_and_a_symlink_loop_are_named_for_what_they_are(model_path: Path, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.wav")
    (tmp_path / "folder.wav").mkdir()
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    for name, reason in (("fifo.wav", "not a regular file"), ("folder.wav", "is a folder"),
                         ("loop.wav", "symbolic links")):
        proc = run_cli("--model", str(model_path), "--headless", "--input", str(tmp_path / name))
        assert_one_line_error(proc, name, reason)
    analyze = run_cli("--model", str(model_path), "analyze", str(tmp_path / "fifo.wav"), str(tmp_path / "loop.wav"),
                      str(fixture_clips()[0]))
    assert analyze.returncode == 0, analyze.stderr
    assert "not a regular file" in analyze.stderr and "symbolic links" in analyze.stderr


def _blocked_in_a_pipe_write(pid: int) -> bool:
    """Whether a thread of ``pid`` sleeps in the kernel's pipe write (Linux: its wchan)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if "pipe_write" in (task / "wchan").read_text():
                return True
    return False


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_odd_file_names_keep_the_analyze_table_in_shape(model_path: Path, tmp_path: Path) -> None:
    names = ["line\nbreak.flac", "感情認識のテストのためのとても長いファイル名です感情認識のテスト.flac", "plain.flac"]
    for name in names:
        shutil.copy(fixture_clips()[0], tmp_path / name)
    proc = run_cli("--model", str(model_path), "analyze", *(str(tmp_path / n) for n in names))
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert len(rows) == 3, proc.stdout  # one line per file: the newline is shown as \n
    assert "line\\nbreak.flac" in rows[0]
    emotion_column = header.index("emotion")
    for row in rows:
        label = row.split()[-4]
        assert _columns(row[: row.rindex(label)]) == emotion_column, row


@pytest.mark.slow
def test_ctrl_c_ends_a_run_whose_reader_stopped_reading(model_path: Path, tmp_path: Path) -> None:
    """A sink stuck on a full pipe (the reader paused) must not hang Ctrl-C/SIGTERM: nothing waits
    on the worker without a timeout, and the process says why it left the worker behind."""
    long = write_long(tmp_path / "long.wav", 600, 16000)
    with start("--model", str(model_path), "--headless", "--input", str(long), "--fast",
               stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        deadline = time.monotonic() + HANG_GUARD_S
        while not _blocked_in_a_pipe_write(proc.pid):  # 600 s of records fill the pipe long before the end
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        stderr = proc.stderr.read()
        proc.wait(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, stderr
    only_our_lines(stderr)
    assert "stuck writing records" in stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "terminal-closed"])
def test_ctrl_c_during_analyze_jobs_ends_quietly_and_leaves_no_worker(model_path: Path, sig: int) -> None:
    """A terminal's Ctrl-C, or its closing (SIGHUP), goes to the whole process group, workers and
    multiprocessing's resource tracker included: the command ends as interrupted (130), says
    nothing of dead workers or helpers, and no worker process outlives it."""
    files = [str(p) for p in fixture_clips()] * 10  # far more than is done before the interrupt

    def default_handlers() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)

    with subprocess.Popen([sys.executable, "-m", "ser_live", "--model", str(model_path), "analyze", "--json",
                           "--jobs", "2", *files], cwd=REPO, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True, preexec_fn=default_handlers) as proc:
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())  # the workers are running
        os.killpg(proc.pid, sig)
        stdout, stderr = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, stderr
    assert stderr == "", stderr
    assert len(stdout.splitlines()) < len(files) - 1
    deadline = time.monotonic() + HANG_GUARD_S
    while subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "a worker outlived the command"
        time.sleep(0.1)


def test_a_flac_replay_never_seeks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """python-soundfile's read() seeks around every block, and a FLAC seek searches the stream
    again: a third of a Pi 4's instructions for a file replay. The reader must not seek."""
    from ser_live.audio_io import AudioFileReader

    path = tmp_path / "clip.flac"
    audio = speech()
    soundfile.write(path, audio, 16000)
    seeks = []
    real_seek = soundfile.SoundFile.seek

    def counting_seek(self: soundfile.SoundFile, *args: object, **kwargs: object) -> int:
        seeks.append(args)
        return real_seek(self, *args, **kwargs)

    reader = AudioFileReader(path)
    monkeypatch.setattr(soundfile.SoundFile, "seek", counting_seek)
    frames = 0
    while len(block := reader.read(800)):
        frames += len(block)
    reader.close()
    assert frames == len(audio) and seeks == []


@pytest.fixture
def ffmpeg(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ffmpeg as ``ffmpeg`` on the PATH: the static binary of the imageio-ffmpeg wheel (a
    dev dependency), so m4a is tested without an OS package."""
    import imageio_ffmpeg

    from ser_live.audio_io import decoders

    folder = tmp_path_factory.mktemp("ffmpeg-bin")
    (folder / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    decoders.cache_clear()
    yield folder / "ffmpeg"
    decoders.cache_clear()


def _m4a(ffmpeg: Path, audio: np.ndarray, rate: int, path: Path) -> Path:
    wav = path.with_suffix(".wav")
    soundfile.write(wav, audio, rate, subtype="PCM_16")
    subprocess.run([str(ffmpeg), "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "64k", str(path)],
                   check=True, timeout=120)
    wav.unlink()
    return path


def _read_all(path: Path, block: int) -> np.ndarray:
    """A file read ``block`` frames at a time (-1: all at once) until an empty block, which must
    stay empty."""
    from ser_live.audio_io import AudioFileReader

    reader = AudioFileReader(path)
    parts = []
    while len(part := reader.read(block)):
        parts.append(part.copy())
    assert len(reader.read(block)) == 0
    reader.close()
    return np.concatenate(parts)


def test_an_m4a_is_decoded_block_by_block_as_it_is_read(tmp_path: Path, ffmpeg: Path) -> None:
    """m4a (which libsndfile lacks) goes through ffmpeg, decoded as it is read, not held whole:
    any block size gives the same samples, then an empty block."""
    from ser_live.audio_io import AudioFileReader

    stereo = np.stack([speech(22050), speech(22050)[::-1]], axis=1)
    path = _m4a(ffmpeg, stereo, 22050, tmp_path / "talk.m4a")
    reader = AudioFileReader(path)
    assert (reader.sample_rate_hz, reader.channels) == (22050, 2)
    reader.close()
    whole = _read_all(path, -1)
    assert abs(len(whole) - len(stereo)) < 4096  # AAC pads to whole frames
    for block in (1, 160, 1025, 44100):
        np.testing.assert_array_equal(_read_all(path, block), whole)


def test_a_long_m4a_keeps_memory_flat(tmp_path: Path, ffmpeg: Path) -> None:
    """Ten minutes of m4a read in 0.5 s blocks: what is held at once stays a few blocks, not the
    38 MB of the whole file as float32 (the code before decoded it whole)."""
    import tracemalloc

    from ser_live.audio_io import AudioFileReader

    rate, seconds = 16000, 600
    path = _m4a(ffmpeg, np.tile(speech()[:rate], seconds), rate, tmp_path / "long.m4a")
    tracemalloc.start()
    try:
        reader = AudioFileReader(path)
        frames = 0
        while len(part := reader.read(rate // 2)):
            frames += len(part)
        reader.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert abs(frames - rate * seconds) < 4096
    assert peak < 2_000_000, f"{peak / 1e6:.1f} MB held at once"


def test_an_m4a_ffmpeg_cannot_decode_is_one_clear_error(tmp_path: Path, ffmpeg: Path) -> None:
    from ser_live.audio_io import AudioFileReader

    path = tmp_path / "talk.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(range(256)) * 4)  # a header, then garbage
    with pytest.raises(AudioFileError, match=r"talk\.m4a: cannot decode audio \("):
        AudioFileReader(path)


def test_an_m4a_without_ffmpeg_says_to_install_it(tmp_path: Path, ffmpeg: Path) -> None:
    path = _m4a(ffmpeg, speech(), 16000, tmp_path / "talk.m4a")
    bare = tmp_path / "no-ffmpeg"
    bare.mkdir()
    proc = run_cli("analyze", str(path), env={"PATH": str(bare)})
    assert_one_line_error(proc, "could not be read")
    assert "skipped: " in proc.stderr and "talk.m4a: cannot decode audio" in proc.stderr
    assert "install ffmpeg to read this format" in proc.stderr


@pytest.mark.parametrize("block", [160, 800, 44100, -1])
def test_a_file_read_block_by_block_is_the_whole_file(tmp_path: Path, block: int) -> None:
    """The reader counts frames itself (no seek before each block, which costs FLAC dearly): the
    blocks still add up to exactly the file, then an empty block; also for a file whose header
    promises more frames than it holds."""
    stereo = np.stack([speech(), speech()[::-1]], axis=1)
    for path in (tmp_path / "clip.flac", tmp_path / "clip.wav"):
        soundfile.write(path, stereo, 16000)
        np.testing.assert_array_equal(_read_all(path, block), soundfile.read(path, dtype="float32")[0])
    cut = tmp_path / "cut.wav"
    cut.write_bytes((tmp_path / "clip.wav").read_bytes()[: 44 + 4 * 16000])  # one of its seconds left
    assert len(_read_all(cut, block)) == 16000
