"""Benchmark: reading one time point of a multi-frame TCF reads only that frame.

Writes a time-lapse TCF (tiled LDM, LZ4 tiles, as recent Tomocube files), then measures wall
time and peak traced memory (tracemalloc sees numpy's buffers) of

1. ``read(path)`` (lazy open: metadata only),
2. ``read(path).frame(t)`` / ``read(path, frame=t)`` (one frame),
3. decoding every frame in turn (what a full-file reader does).

Usage: python benchmarks/io_lazy_tcf.py [--frames 20] [--shape 64 256 256] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from ri2fl.io import read
from ri2fl.io.tcf import write_tcf


def _measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, elapsed, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256))
    parser.add_argument("--out", type=Path, help="folder for the TCF (default: temporary)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    base = (1.337 + 0.03 * rng.random(args.shape)).astype(np.float32)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        path = Path(tmp) / "timelapse.TCF"
        frames = (base + 0.0005 * t for t in range(args.frames))
        _, t_write, _ = _measure(lambda: write_tcf(path, list(frames), (0.2, 0.15, 0.15),
                                                   layout="ldm", compression="lz4", mip=False))
        size_mb = path.stat().st_size / 2**20
        frame_mb = np.prod(args.shape) * 4 / 2**20
        vol, t_open, m_open = _measure(lambda: read(path))
        runs = [_measure(lambda: read(path).frame(args.frames // 2).data) for _ in range(3)]
        one, t_one, m_one = min(runs, key=lambda r: r[1])  # best of 3: the machine is shared
        assert np.allclose(one, base + 0.0005 * (args.frames // 2), atol=1e-4)
        _, t_all, m_all = _measure(
            lambda: [read(path, frame=t).data.mean() for t in range(args.frames)])
        _, t_eager, m_eager = _measure(lambda: np.asarray(read(path).data))
        print(f"TCF {args.frames} frames x {tuple(args.shape)} (LDM, LZ4): {size_mb:.1f} MiB "
              f"on disk, {frame_mb:.1f} MiB float32 per frame; written in {t_write:.2f} s")
        print(f"  open (lazy)       {t_open * 1e3:8.1f} ms   peak {m_open:8.1f} MiB   "
              f"axes {vol.axes} shape {vol.shape}")
        print(f"  one frame         {t_one * 1e3:8.1f} ms   peak {m_one:8.1f} MiB")
        print(f"  all frames (loop) {t_all * 1e3:8.1f} ms   peak {m_all:8.1f} MiB")
        print(f"  all frames (load) {t_eager * 1e3:8.1f} ms   peak {m_eager:8.1f} MiB")


if __name__ == "__main__":
    main()
