"""Inference speed per backbone preset: the same as ``amsnet bench speed`` (kept so that the
documented command keeps working; the measurement lives in :mod:`amsnet.studies.bench.speed`).

    python benchmarks/bench_inference.py                       # paper presets, this device
    python benchmarks/bench_inference.py --nets unet dncnn --preset small --json out.json
"""

from __future__ import annotations

import sys

from amsnet.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "speed", *sys.argv[1:]]))
