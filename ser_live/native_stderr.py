"""Keeps known noise of C libraries off stderr, and nothing else.

Some libraries ser-live loads write straight to file descriptor 2, where Python cannot catch
them: libmpg123 (through libsndfile) prints a line per damaged-looking MP3 frame it decodes
fine anyway, and notes while it resyncs in a damaged file; PortAudio's ALSA layer prints
``Expression ... failed`` assertions when a sound server goes away, and ALSA prints
``ALSA lib ...`` lines while it looks for one. ser-live already reports each of these events
in its own one line; the library lines only bury it.

:func:`filtered_native_stderr` puts a pipe on descriptor 2 and a thread that copies every line
to the real stderr except those matching :data:`NOISE`. Python's own ``sys.stderr`` (our
messages, warnings, a traceback if one ever happened) writes to the real stderr directly, so
it is never delayed, reordered or filtered.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

NOISE = re.compile(
    rb"^(\[[^\]]*mpg123[^\]]*\]"  # [src/libmpg123/layer3.c:INT123_do_layer3():1774] error: part2_3_length ...
    rb"|Expression '.*' failed in '.*', line: \d+"  # PortAudio's ALSA host API asserting
    rb"|ALSA lib "  # ALSA's plugin chatter ("ALSA lib pulse.c:242:(pulse_connect) ...")
    rb"|(Note|Warning): )"  # libmpg123 in a damaged MP3: "Note: Trying to resync...", "Warning: Xing stream size ..."
)
DRAIN_TIMEOUT_S = 1.0  # at exit, how long to wait for the last native lines to be copied


def _pump(pipe_fd: int, out_fd: int) -> None:
    with os.fdopen(pipe_fd, "rb") as pipe:
        for line in pipe:
            if not NOISE.match(line):
                os.write(out_fd, line)


@contextlib.contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Within the block, descriptor 2 is filtered as the module says; without a usable
    descriptor 2 (a service started with stderr closed) nothing is changed."""
    try:
        real_fd = os.dup(2)
    except OSError:
        yield
        return
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, real_fd), name="ser-stderr-filter", daemon=True)
    pump.start()
    python_stderr = sys.stderr
    sys.stderr = open(real_fd, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(real_fd, 2)  # the pipe's last write end in this process closes: the pump reads to the end
        pump.join(DRAIN_TIMEOUT_S)
        if not pump.is_alive():  # else a child still holds the pipe; the pump may write to real_fd until exit
            os.close(real_fd)
