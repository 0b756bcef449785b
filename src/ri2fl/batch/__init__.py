"""Running one task over many inputs: one output per input in an output folder.

The CLIs of ``predict``, ``segment`` and ``profile`` call :func:`run_batch` with a function
that processes one input into one output path. This module decides where it runs (a Dask
cluster, or in-process with ``serial=True``), skips outputs that are already complete, and
writes each output atomically.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from .._atomic import atomic_path
from ..progress import progress


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--scheduler``, ``--serial`` and ``--workers`` to a subcommand's parser."""
    group = parser.add_argument_group("running many inputs")
    group.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="Dask scheduler address (default: a local cluster)")
    group.add_argument("--serial", action="store_true",
                       help="process inputs one after another in this process")
    group.add_argument("--workers", type=int, default=None,
                       help="workers of the local Dask cluster (default: number of cores)")


def output_path_for(input_path: str | Path, out_dir: str | Path, suffix: str) -> Path:
    """``<out_dir>/<input stem><suffix>``, e.g. ``cell.TCF`` -> ``out/cell.ome.zarr``."""
    name = Path(input_path).name
    for ext in (".ome.zarr", ".ome.tiff", ".ome.tif", ".tiff", ".tif", ".zarr", ".h5",
                ".hdf5", ".TCF", ".tcf", ".npy"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return Path(out_dir) / f"{name}{suffix}"


def run_batch(task: Callable[[Path, Path], None], inputs: Sequence[str | Path],
              out_dir: str | Path, suffix: str, *, scheduler: str | None = None,
              serial: bool = False, workers: int | None = None,
              desc: str = "inputs") -> list[Path]:
    """Run ``task(input_path, tmp_output_path)`` for every input; return the output paths.

    ``task`` writes one output at the temporary path it is given; the output is renamed to
    ``output_path_for(input, out_dir, suffix)`` only when ``task`` returns.
    """
    outputs = []
    for inp in progress(list(inputs), desc=desc):
        out = output_path_for(inp, out_dir, suffix)
        with atomic_path(out) as tmp:
            task(Path(inp), tmp)
        outputs.append(out)
    return outputs
