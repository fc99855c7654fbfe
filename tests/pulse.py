"""A private PulseAudio server with a null sink, for real capture through PortAudio.

Clips played into the sink with ``paplay`` come back out of its ``.monitor`` source, which
ser-live records from through PortAudio's ALSA ``pulse`` device (``PULSE_SOURCE`` picks it).
Each server gets its own runtime folder, so a test may kill it without touching others.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

SINK = "ser_test"


class PulseServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(folder),
            "PULSE_RUNTIME_PATH": str(folder / "pulse"),
            "PULSE_STATE_PATH": str(folder / "state"),
            "PULSE_SOURCE": f"{SINK}.monitor",
            "PULSE_SINK": SINK,
        }

    @property
    def client_env(self) -> dict[str, str]:
        keys = ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH", "PULSE_STATE_PATH", "PULSE_SOURCE", "PULSE_SINK")
        return {k: self.env[k] for k in keys}

    def start(self) -> None:
        if shutil.which("pulseaudio") is None:
            raise RuntimeError("pulseaudio is not installed (scripts/setup.sh dev installs it)")
        subprocess.run(
            [
                "pulseaudio", "--daemonize=yes", "-n", "--exit-idle-time=-1", "--disallow-exit",
                "--disable-shm=yes", "--log-target=stderr",
                "--load=module-native-protocol-unix",
                f"--load=module-null-sink sink_name={SINK} rate=48000",
            ],
            env=self.env, check=True, capture_output=True, timeout=30,
        )
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PulseAudio did not come up")
            time.sleep(0.1)

    def play(self, path: Path) -> None:
        """Play a file into the null sink; returns when playback has finished."""
        subprocess.run(["paplay", f"--device={SINK}", str(path)], env=self.env, check=True, timeout=60)

    def kill(self) -> None:
        subprocess.run(["pulseaudio", "--kill"], env=self.env, capture_output=True, timeout=30)
