"""ser-live: real-time speech-emotion recognition from a microphone or a file."""

import os

__version__ = "0.1.0"

# The per-hop matrix products are tiny; OpenBLAS's thread pool only adds wake-ups and fights
# other programs for cores. Measured on a busy 2-core machine: 16 ms per hop with the pool,
# 0.9 ms without (benchmarks/bench_pipeline.py). Takes effect when ser_live is imported before
# numpy, as the ser-live command does; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
