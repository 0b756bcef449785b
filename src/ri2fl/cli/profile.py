"""``ri2fl profile``: single-cell feature table of one or many tomograms."""

from __future__ import annotations

import argparse
import contextlib
import functools
from pathlib import Path

import pandas as pd

from ..batch import output_path_for, run_batch
from ..errors import ConfigError, InputError
from ..io.tables import check_table_path, write_table
from ._common import (
    add_batch_arguments,
    add_input_arguments,
    check_file_output,
    check_medium_index,
    check_voxel_size,
)

HELP = "measure every cell (morphology, dry mass, fluorescence, texture...) into a table"

EPILOG = """Examples:
  # raw RI: predicts the six channels and segments the cells itself
  ri2fl profile control/*.TCF --condition control -o control.parquet
  ri2fl profile stimulated/*.TCF --condition PDGF -o pdgf.parquet
  # reuse the outputs of ri2fl predict / ri2fl segment (same stem, .ome.zarr)
  ri2fl profile cell.TCF --predictions predictions/ --segmentation masks/ -o cell.csv
  # the RI store ri2fl segment wrote carries its labels: they are reused, not recomputed;
  # so are the demo's volumes/<field>_ri.ome.zarr with <field>_fluorescence.ome.zarr
  ri2fl profile masks/cell.ome.zarr --predictions predictions/ -o cell.csv
  ri2fl profile demo_out/volumes/*_ri.ome.zarr -o demo_again.parquet
  # simulated or annotated paired HDF5: true fluorescence and labels
  ri2fl profile data/*.h5 --ground-truth -o truth.parquet
  # then: ri2fl report control.parquet pdgf.parquet -o report.html
  # profile again into the same table (only a table ri2fl wrote is ever replaced)
  ri2fl profile control/*.TCF --condition control -o control.parquet --overwrite

The table has one row per cell (per frame for time-lapses, with a track_id) and the
columns of docs/features.md; .parquet or .csv by the extension of -o.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="RI files: TCF, HDF5, TIFF, OME-Zarr, .npy (or paired HDF5)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="feature table to write: .parquet or .csv")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the table -o if ri2fl wrote it (default: refuse)")
    parser.add_argument("--condition", help="value of a 'condition' column for every row")
    parser.add_argument("--cell-type", help="value of a 'cell_type' column for every row")
    parser.add_argument("--predictions", type=Path, metavar="PATH",
                        help="OME-Zarr from 'ri2fl predict', or a folder of <stem>.ome.zarr")
    parser.add_argument("--segmentation", type=Path, metavar="PATH",
                        help="OME-Zarr from 'ri2fl segment', or a folder of "
                             "<stem>.ome.zarr")
    parser.add_argument("--recompute", action="store_true",
                        help="predict and segment here even when an INPUT holds its "
                             "segmentation (labels) or has <stem>_fluorescence.ome.zarr "
                             "next to it (default: reuse them)")
    parser.add_argument("--ground-truth", action="store_true",
                        help="paired HDF5 inputs: use their stored fluorescence and labels")
    parser.add_argument("--model", default="default",
                        help="fluorescence model: shipped name or checkpoint (default: "
                             "default)")
    parser.add_argument("--tta", type=int, default=0, metavar="N",
                        help="test-time augmentations when predicting here (0 off, else >= 2): "
                             "adds per-cell uncertainty columns")
    parser.add_argument("--mc", type=int, default=0, metavar="N",
                        help="MC-dropout passes when predicting here (0 off, else >= 2)")
    parser.add_argument("--method", choices=("network", "watershed"), default="network",
                        help="cell segmentation method (default network)")
    add_input_arguments(parser, "profile")
    parser.add_argument("--max-track-distance", type=float, default=10.0, metavar="UM",
                        help="largest move (µm) between frames linked into a track "
                             "(default 10)")
    add_batch_arguments(parser)


def _side_path(option: Path | None, inp: Path, n_inputs: int, name: str) -> Path | None:
    if option is None:
        return None
    if option.is_dir() and not (option / "zarr.json").exists() and not (
            option / ".zattrs").exists():
        path = output_path_for(inp, option, ".ome.zarr")
        if not path.exists():
            raise InputError(f"no {name} for this input (looked for {path})", inp,
                             f"run 'ri2fl {name.split()[0]}' on it first")
        return path
    if n_inputs > 1:
        raise ConfigError(f"one --{name.split()[0].replace('predict', 'predictions')} store "
                          "for several inputs", option, "give a folder of <stem>.ome.zarr")
    return option


def _profile_one(inp: Path, out: Path, *, args: argparse.Namespace, n_inputs: int) -> None:
    from ..profile.pipeline import profile_file

    metadata = {k: v for k, v in (("condition", args.condition),
                                  ("cell_type", args.cell_type)) if v is not None}
    table = profile_file(
        inp, predictions=_side_path(args.predictions, inp, n_inputs, "predict output"),
        segmentation=_side_path(args.segmentation, inp, n_inputs, "segment output"),
        ground_truth=args.ground_truth, frame=args.frame, voxel_size_um=args.voxel_size,
        medium_index=args.medium_index, model=args.model, tta=args.tta, mc=args.mc,
        method=args.method,
        metadata=metadata, max_track_distance_um=args.max_track_distance,
        fill_missing=args.fill_missing, reuse=not args.recompute)
    write_table(table, out)  # into the batch's staging folder


def run(args: argparse.Namespace) -> int:
    check_table_path(args.output)
    check_medium_index(args.medium_index)
    check_voxel_size(args.voxel_size)
    # now, not after the batch
    check_file_output(args.output, [*args.inputs, args.predictions, args.segmentation],
                      args.overwrite)
    # per-input tables: kept after a failure, so that a rerun redoes only what failed
    parts_dir = args.output.with_name(f".{args.output.name}.parts")
    task = functools.partial(_profile_one, args=args, n_inputs=len(args.inputs))
    options = {k: getattr(args, k) for k in ("condition", "cell_type", "ground_truth", "model",
                                             "method", "frame", "voxel_size", "medium_index",
                                             "max_track_distance", "tta", "mc", "recompute")}
    options.update(predictions=str(args.predictions), segmentation=str(args.segmentation))
    parts = run_batch(task, args.inputs, parts_dir, ".parquet", scheduler=args.scheduler,
                      serial=args.serial, workers=args.workers, desc="profiling",
                      options=options)
    table = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    write_table(table, args.output, overwrite=args.overwrite)
    _remove_parts(parts_dir, parts)
    n_inputs = len(args.inputs)
    print(f"{len(table)} cells from {n_inputs} input{'s' * (n_inputs > 1)} -> {args.output} "
          f"({len(table.columns)} columns)")
    return 0


def _remove_parts(parts_dir: Path, parts: list[Path]) -> None:
    """Remove the per-input tables and their manifest once the table is written; the folder
    goes only if that leaves it empty (never anything ri2fl did not write)."""
    from ..batch import MANIFEST_NAME

    for path in [*parts, parts_dir / MANIFEST_NAME]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    with contextlib.suppress(OSError):
        parts_dir.rmdir()
