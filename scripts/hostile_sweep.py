"""Run the ``ri2fl`` command on hostile inputs and outputs, each under time and memory limits.

Every case builds its own small fixture in a scratch folder, runs one real ``ri2fl``
subprocess (60 s, 3 GB of address space) and checks what a user would check: the exit
status, one error line without a traceback, that the bait files are intact, and that no
staging or scratch is left behind. The unit tests cover each case in-process
(``tests/test_outputs_never_destroy.py``, ``tests/batch/test_hostile_outputs.py``,
``tests/io/test_hostile_inputs.py``, the budget tests); this is the same promise checked on
the installed command.

Usage::

    python scripts/hostile_sweep.py            # prints a Markdown table; exit 1 if a case fails
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

RI2FL = [sys.executable, "-m", "ri2fl.cli.main", "--quiet"]
TIME_LIMIT_S = 60
MEMORY_LIMIT = 3 * 2**30


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(args: list[str], cwd: Path) -> tuple[int, str, float]:
    """Exit status (124 on timeout), stderr and wall seconds of one ``ri2fl`` call."""
    start = time.perf_counter()
    env = {**os.environ, "RI2FL_NO_PROGRESS": "1"}
    try:
        done = subprocess.run([*RI2FL, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=TIME_LIMIT_S, preexec_fn=_limits, env=env, check=False)
        return done.returncode, done.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        return 124, "timed out", time.perf_counter() - start


def ri_h5(path: Path, shape=(16, 32, 32), voxel=0.2, **attrs) -> Path:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("ri", data=(1.337 + 0.02 * rng.random(shape)).astype(np.float32))
        ds.attrs.update(voxel_size_um=voxel, **attrs)
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if "ri2fl-staging" in p.name
                  or p.name.startswith("ri2fl-predict-"))


# each case: (what it checks, build(folder) -> (ri2fl args, check() -> problem or ""))
def convert_into_user_folder(d: Path):
    (d / "userdir.ome.zarr").mkdir()
    (d / "userdir.ome.zarr" / "thesis.docx").write_text("years of work")
    return (["convert", str(ri_h5(d / "x.h5")), str(d / "userdir.ome.zarr")],
            lambda: "" if (d / "userdir.ome.zarr/thesis.docx").exists() else "thesis deleted")


def convert_tif_onto_folder(d: Path):
    (d / "userdir.ome.tif").mkdir()
    (d / "userdir.ome.tif" / "notes.txt").write_text("mine")
    return (["convert", str(ri_h5(d / "x.h5")), str(d / "userdir.ome.tif")],
            lambda: "" if (d / "userdir.ome.tif/notes.txt").exists() else "folder replaced")


def convert_input_inside_output(d: Path):
    store = d / "userdir.ome.zarr"
    store.mkdir()
    (store / "notes.txt").write_text("mine")
    src = ri_h5(store / "cell.h5")
    return (["convert", str(src), str(store)],
            lambda: "" if src.exists() and (store / "notes.txt").exists() else "input deleted")


def predict_over_foreign_output(d: Path):
    (d / "others" / "cell.ome.zarr").mkdir(parents=True)
    (d / "others" / "cell.ome.zarr" / "important.txt").write_text("mine")
    return (["predict", str(ri_h5(d / "cell.h5")), "-o", str(d / "others"), "--serial"],
            lambda: "" if (d / "others/cell.ome.zarr/important.txt").exists() else "deleted")


def planted_lock_symlink(d: Path):
    victim = d / "victim.txt"
    victim.write_text("precious")
    (d / "out").mkdir()
    os.symlink("../victim.txt", d / "out" / ".ri2fl.lock")
    return (["predict", str(ri_h5(d / "cell.h5")), "-o", str(d / "out"), "--serial"],
            lambda: "" if victim.read_text() == "precious" else "victim truncated")


def fifo_input(d: Path):
    os.mkfifo(d / "cell.h5")
    return ["predict", str(d / "cell.h5"), "-o", str(d / "out"), "--serial"], lambda: ""


def dev_zero_input(d: Path):
    os.symlink("/dev/zero", d / "cell.h5")
    return ["segment", str(d / "cell.h5"), "-o", str(d / "out"), "--serial"], lambda: ""


def fifo_manifest(d: Path):
    (d / "out").mkdir()
    os.mkfifo(d / "out" / ".ri2fl-manifest.json")
    return (["predict", str(ri_h5(d / "cell.h5")), "-o", str(d / "out"), "--serial"],
            lambda: "")


def store_with_fifo_chunk(d: Path):
    from ri2fl.io import write_ome_zarr

    store = write_ome_zarr(d / "x.ome.zarr", np.full((8, 16, 16), 1.35, np.float32), 0.2)
    chunk = next(p for p in (store / "0").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.unlink()
    os.mkfifo(chunk)
    return ["info", str(store)], lambda: ""


def declared_but_empty_hdf5(d: Path):
    with h5py.File(d / "big.h5", "w") as f:
        f.create_dataset("ri", shape=(1024, 1024, 1024), dtype=np.float32)
        f["ri"].attrs["voxel_size_um"] = 0.2
    return ["info", str(d / "big.h5")], lambda: ""


def voxel_size(value: float, command: str = "segment"):
    def build(d: Path):
        return ([command, str(ri_h5(d / "cell.h5", voxel=value)), "-o", str(d / "out"),
                 "--serial"], lambda: "" if not (d / "out").exists() else "wrote an output")
    return build


def nan_medium_index(d: Path):
    return ["info", str(ri_h5(d / "cell.h5", medium_index=float("nan"))), "--json"], lambda: ""


def empty_time_axis(d: Path):
    np.save(d / "empty.npy", np.zeros((0, 8, 16, 16), np.float32))
    return (["convert", str(d / "empty.npy"), str(d / "out.ome.zarr"), "--voxel-size",
             "0.2", "0.15", "0.15"],
            lambda: "" if not (d / "out.ome.zarr").exists() else "wrote an output")


CASES: dict[str, Callable] = {
    "convert into a user's folder named .ome.zarr": convert_into_user_folder,
    "convert .ome.tif onto a user's folder": convert_tif_onto_folder,
    "convert an input that lies inside the output": convert_input_inside_output,
    "predict where a foreign cell.ome.zarr exists": predict_over_foreign_output,
    "lock file planted as a symlink": planted_lock_symlink,
    "predict a FIFO": fifo_input,
    "segment a symlink to /dev/zero": dev_zero_input,
    "manifest is a FIFO": fifo_manifest,
    "OME-Zarr chunk is a FIFO": store_with_fifo_chunk,
    "HDF5 declaring 1024^3 voxels with no data": declared_but_empty_hdf5,
    "predict, voxel size 5 µm": voxel_size(5.0, "predict"),
    "segment, voxel size 5 µm": voxel_size(5.0),
    "voxel size 10 µm": voxel_size(10.0),
    "voxel size 1e3 µm": voxel_size(1e3),
    "medium index NaN in the file": nan_medium_index,
    "empty time axis": empty_time_axis,
}


def main() -> int:
    print("| case | exit | seconds | one clear line | data intact, nothing left | message |")
    print("|---|---|---|---|---|---|")
    failures = 0
    for name, build in CASES.items():
        folder = Path(tempfile.mkdtemp(prefix="ri2fl-sweep-"))
        try:
            args, check = build(folder)
            rc, err, seconds = run(args, folder)
            lines = [line for line in err.splitlines() if line.strip()]
            clear = rc == 2 and len(lines) == 1 and "Traceback" not in err
            problem = check() or ", ".join(_leftovers(folder))
            failures += not (clear and not problem)
            message = (lines[-1] if lines else "")[:110].replace("|", "/")
            print(f"| {name} | {rc} | {seconds:.1f} | {'yes' if clear else 'NO'} | "
                  f"{'yes' if not problem else 'NO: ' + problem} | {message} |", flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
