"""What the benchmarks share: each case runs in a fresh subprocess, so its peak memory is its
own, and prints one JSON line (its result) last."""

from __future__ import annotations

import json
import subprocess
import sys


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Restart the VmHWM high-water mark (Linux >= 4.0) so setup does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def run_case(script: str, args: list[str], method: str, shape, timeout: float | None = None
             ) -> dict:
    """Run ``script _case ARGS`` in a fresh interpreter and return its JSON result, or a row
    with ``error`` (its stderr's tail, or that it was stopped after ``timeout`` s)."""
    cmd = [sys.executable, script, "_case", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"method": method, "shape": shape, "error": f"stopped after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"method": method, "shape": shape, "error": proc.stderr.strip()[-300:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "?"
