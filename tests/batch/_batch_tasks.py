"""Tasks of the batch tests: small deterministic computations, picklable by value."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ri2fl.errors import InputError


def make_inputs(folder: Path, n: int, shape=(4, 8, 8)) -> list[Path]:
    """``n`` small .npy tomograms with different contents."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"cell{i:02d}.npy"
        np.save(path, np.random.default_rng(i).random(shape, dtype=np.float32))
        paths.append(path)
    return paths


def smooth_task(inp: Path, tmp: Path, gain: float = 2.0, delay: float = 0.0,
                log: str | None = None, gate: str | None = None, open_inputs: int = 2) -> None:
    """A stand-in for prediction: a deterministic function of the input, saved as .npy.

    Like every ri2fl output it carries the bytes ``ri2fl`` (after the array, where
    ``np.load`` ignores them), so that a rerun may replace it.

    With ``gate``, inputs after the first ``open_inputs`` stop half-written until the file
    ``gate`` exists: a test can then act while a run is certainly in the middle of an output.
    """
    if log:
        with open(log, "a") as fh:
            fh.write(f"{inp.name} {os.getpid()}\n")
    data = np.load(inp)
    if not np.isfinite(data).all():
        raise InputError("input holds NaN", inp)
    out = np.cumsum(data, axis=0) * gain
    # write in two steps so that a kill in between leaves a half-written temporary file
    with open(tmp, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(out))
        fh.flush()
        time.sleep(delay)
        while gate and int(inp.stem[-2:]) >= open_inputs and not os.path.exists(gate):
            time.sleep(0.02)
        fh.write(np.ascontiguousarray(out).tobytes())
        fh.write(b"ri2fl")


def zarr_task(inp: Path, tmp: Path) -> None:
    """Writes a directory store, as predict does."""
    import zarr

    data = np.load(inp) + 1.0
    arr = zarr.create_array(str(tmp), shape=data.shape, chunks=(2, 4, 4), dtype="f4")
    arr[:] = data
