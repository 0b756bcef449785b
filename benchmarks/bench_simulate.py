"""Simulator benchmark: seconds per field of view for each tomograph path and modality.

Cases (each repeated ``--repeat`` times, the best wall time kept, CPU time reported too so
that a loaded machine can be told apart from a slow code path):

- ``phantom``: cells, organelles, ground truth and fluorescence only (``physics="none"``);
- ``fast``: + support mask and 40 Gerchberg-Papoulis iterations (the default path);
- ``physical``: + 49-beam multi-slice propagation, Rytov, Ewald mapping and GP;
- ``fast+bf+dic``: the fast path plus 37-point Abbe brightfield and DIC z-stacks.

Usage::

    python benchmarks/bench_simulate.py                         # 64 x 256 x 256
    python benchmarks/bench_simulate.py --shape 64 512 512 --cases phantom fast
    python benchmarks/bench_simulate.py --json out.json

The numbers depend on the cores available (``RI2FL_FFT_WORKERS`` sets the FFT threads, two
by default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

CASES = {
    "phantom": {"physics": "none"},
    "fast": {"physics": "fast"},
    "physical": {"physics": "physical"},
    "fast+bf+dic": {"physics": "fast", "modalities": ("bf", "dic")},
}


def run_case(case: str, shape: tuple[int, int, int], cell_type: str, seed: int,
             repeat: int) -> dict[str, float]:
    from ri2fl.simulate import simulate_fov

    best_wall, best_cpu = float("inf"), float("inf")
    for i in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        simulate_fov(cell_type, seed + i, shape, **CASES[case])
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return {"wall_s": round(best_wall, 2), "cpu_s": round(best_cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", nargs=3, type=int, default=[64, 256, 256])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--cell-type", default="fibroblast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    shape = tuple(args.shape)
    # warm the support-mask cache and imports outside the timings
    from ri2fl.simulate import simulate_fov
    simulate_fov(args.cell_type, args.seed, (16, 32, 32))
    results = {}
    print("| case | shape | wall s | CPU s |\n|---|---|---|---|")
    for case in args.cases:
        r = run_case(case, shape, args.cell_type, args.seed, args.repeat)
        results[case] = r
        print(f"| {case} | {'x'.join(map(str, shape))} | {r['wall_s']} | {r['cpu_s']} |",
              flush=True)
    meta = {"shape": shape, "cell_type": args.cell_type, "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(), "machine": platform.machine(), "results": results}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(meta, fh, indent=2)
    print(f"load average during the run: {meta['load_avg']}")


if __name__ == "__main__":
    main()
