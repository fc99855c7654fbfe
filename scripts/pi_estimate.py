#!/usr/bin/env python3
"""Turn the instruction counts scripts/pi-check.sh collects into an estimated cost per hop on a Pi.

Input: lines of `CPU CLIP TOTAL THREADS RECORDS` (callgrind's instruction total for one
`ser-live --headless --input CLIP --fast` run under qemu emulating CPU, the instructions of the
threads other than the main one, and the records the run wrote). Two estimates per hop:
- threads: what the worker (every window's features, speech detector, model, smoothing) and the
  file replay executed, over the run's windows; start-up and model loading are in the main thread;
- difference: (long clip - short clip) / (their difference in windows), which cancels start-up.
Time = instructions / (IPC x clock). The clocks are the boards' (Pi 4: Cortex-A72 at 1.5 GHz,
1.8 GHz on boards from 2022; Pi 5: Cortex-A76 at 2.4 GHz); IPC is an assumption, not a
measurement, given as a range for this mix of interpreter code and vectorised kernels. Instructions
executed under emulation are those the Pi would execute (qemu runs the same arm64 code with the
Pi's CPU features), but cycles are not: cache misses and memory speed on the Pi are not modelled.

    python scripts/pi_estimate.py counts.txt
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

HOP_S = 0.5  # the shipped model's hop


@dataclass(frozen=True)
class Board:
    name: str
    cpu: str  # qemu's name for its core
    clock_ghz: float
    ipc_low: float
    ipc_high: float

    def ms(self, instructions: float) -> tuple[float, float]:
        """(fastest, slowest) time for `instructions` over the assumed IPC range."""
        fast, slow = (instructions / (ipc * self.clock_ghz * 1e9) * 1e3 for ipc in (self.ipc_high, self.ipc_low))
        return fast, slow


BOARDS = (Board("Pi 4", "cortex-a72", 1.5, 0.5, 1.0), Board("Pi 5", "cortex-a76", 2.4, 0.8, 1.5))


def main() -> int:
    runs: dict[str, list[tuple[int, int, int]]] = {}
    with open(sys.argv[1]) as counts:
        lines = counts.read().splitlines()
    for line in lines:
        cpu, _clip, total, threads, records = line.split()
        runs.setdefault(cpu, []).append((int(total), int(threads), int(records)))
    for board in BOARDS:
        done = sorted(runs.get(board.cpu, []), key=lambda run: run[2])
        if not done:
            print(f"  {board.name} ({board.cpu}): not counted")
            continue
        estimates = [("threads", threads / records, f"{records} windows, {total / 1e9:.2f} G in all")
                     for total, threads, records in done if threads and records]
        if len(done) == 2 and done[1][2] > done[0][2]:
            (t0, _, n0), (t1, _, n1) = done
            estimates.append(("difference", (t1 - t0) / (n1 - n0), f"{n0} and {n1} windows"))
        for how, per_hop, note in estimates:
            fast_ms, slow_ms = board.ms(per_hop)
            print(f"  {board.name} ({board.cpu}), by {how} ({note}): {per_hop / 1e6:.1f} M instructions a hop; "
                  f"at {board.clock_ghz} GHz and IPC {board.ipc_low}-{board.ipc_high}: {fast_ms:.1f}-{slow_ms:.1f} ms "
                  f"a hop, {fast_ms / HOP_S / 10:.1f}-{slow_ms / HOP_S / 10:.1f}% of one core at a {HOP_S} s hop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
