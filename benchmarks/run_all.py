"""Run every CPU benchmark of this folder, one after another, and print one table.

Each benchmark runs in its own process (so that none inherits another's memory or threads)
with the arguments below; its own detailed output is kept in ``--log-dir``. The table gives
each benchmark's command, wall time, exit status and its headline line (the last line it
printed). Run it on an otherwise idle machine: timings taken under contention mislead.

Usage::

    python benchmarks/run_all.py                 # full sizes (tens of minutes on 2 cores)
    python benchmarks/run_all.py --quick         # small sizes: checks that each one runs
    python benchmarks/run_all.py --only infer segment
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (arguments at full size, arguments with --quick). GPU-only and multi-hour
#: benchmarks (``bench_gpu.py``, the GPU session script, the 7 x 7 stitched field) are left
#: out.
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "infer": (["bench_speed.py", "all"], ["bench_speed.py", "all", "--quick", "--patches", "4"]),
    "tile": (["bench_tile.py", "--tiles", "own", "--threads", "2"],
             ["bench_tile.py", "--quick", "--tiles", "own"]),
    "segment": (["bench_segment.py"], ["bench_segment.py", "--shape", "32", "128", "128"]),
    "profile": (["bench_profile.py"], ["bench_profile.py", "--shape", "32", "128", "128",
                                       "--fields", "1"]),
    "simulate": (["bench_simulate.py"], ["bench_simulate.py", "--shape", "32", "128", "128",
                                         "--cases", "phantom", "fast", "--repeat", "1"]),
    "train": (["bench_train.py", "--threads", "2"], ["bench_train.py", "--steps", "2"]),
    "dask": (["bench_dask.py"], ["bench_dask.py", "--inputs", "2", "--shape", "16", "64", "64",
                                 "--patch", "16", "64", "64"]),
    "ome_zarr": (["bench_ome_zarr_write.py"], ["bench_ome_zarr_write.py", "--shape", "16", "128",
                                                "128"]),
    "large_field": (["bench_large_field.py", "--work", "{work}/field", "--grid", "2", "2"],
                    ["bench_large_field.py", "--work", "{work}/field", "--grid", "2", "2"]),
}


#: Benchmarks whose own tables are printed in full after the summary table: the CPU
#: inference ratios against MONAI and the peak-memory curve, all from this one run.
SHOW_TABLES = ("infer",)


def _tables(text: str) -> str:
    """The Markdown table lines of a benchmark's output (with the blank lines between)."""
    lines = [line for line in text.splitlines() if line.startswith("|") or not line.strip()]
    return "\n".join(lines).strip()


def _headline(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "").replace("|", "/")[:120]


def run_one(name: str, argv: list[str], log_dir: Path) -> tuple[float, int, str, str]:
    """Run one benchmark; return its wall time, exit status, headline line and output."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]],
                            capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    (log_dir / f"{name}.log").write_text(result.stdout + "\n--- stderr ---\n" + result.stderr)
    return seconds, result.returncode, _headline(result.stdout or result.stderr), result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only these ({', '.join(sorted(BENCHMARKS))})")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="keep each benchmark's full output here (default: a temp folder)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ri2fl-bench-"))
    log_dir = args.log_dir or work
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"Python {platform.python_version()}; logs in {log_dir}\n")
    print("| benchmark | command | wall s | status | headline |\n|---|---|---|---|---|")
    failed = 0
    shown: dict[str, str] = {}
    for name in args.only or list(BENCHMARKS):
        full, quick = BENCHMARKS[name]
        cmd = [a.format(work=work) for a in (quick if args.quick else full)]
        seconds, rc, headline, stdout = run_one(name, cmd, log_dir)
        if name in SHOW_TABLES:
            shown[name] = _tables(stdout)
        failed += rc != 0
        status = "ok" if rc == 0 else f"exit {rc}"
        print(f"| {name} | `python benchmarks/{' '.join(cmd)}` | {seconds:.1f} | {status} | "
              f"{headline} |", flush=True)
    for name, tables in shown.items():
        print(f"\n### {name}\n\n{tables}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
