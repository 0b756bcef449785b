"""``ri2fl predict``: RI tomograms to inferred fluorescence with uncertainty, as OME-Zarr."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from .._atomic import check_not_input, check_output
from ..batch import ZARR_SUFFIXES, output_path_for, single_output_path
from ..errors import ConfigError
from ..io.prediction import DEFAULT_PREDICTION_DTYPE, PREDICTION_DTYPES
from ._common import (
    add_batch_arguments,
    add_input_arguments,
    add_output_arguments,
    check_medium_index,
    check_voxel_size,
    run_each,
    with_model_digests,
)

HELP = "infer the six fluorescence channels (with uncertainty) from RI tomograms"

EPILOG = """Writes one OUT/<name>.ome.zarr per input (axes czyx, or tczyx for time-lapses), on
the input's grid and voxel size, with channels <target>, and with --tta / --mc also
<target>_uncertainty_data / <target>_uncertainty_model (voxel-wise standard deviations),
float32 (--dtype float16 halves the disk use; same channels). ri2fl demo and
ri2fl.io.write_prediction write the same layout. Intensities are on the model's fixed
scale: nothing is rescaled per volume.

Output: with one input, -o X.ome.zarr writes exactly X.ome.zarr (replaced only with
--overwrite, and only if ri2fl wrote it). Any other OUT is a folder of <name>.ome.zarr, one
per input; a rerun skips the outputs that are complete.

Examples:
  ri2fl predict cell.TCF -o cell_fl.ome.zarr
  ri2fl predict cell.TCF -o cell_fl.ome.zarr --overwrite   # replace an earlier prediction
  ri2fl predict cell.TCF -o predictions/
  ri2fl predict cell.TCF -o predictions/ --tta 8 --mc 8
  ri2fl predict cell.TCF -o predictions/ --dtype float16
  ri2fl predict data/*.TCF -o predictions/ --targets nucleus membrane --workers 2
  ri2fl predict stack.tif -o out/ --voxel-size 0.2 0.15 0.15 --medium-index 1.335
  ri2fl predict timelapse.TCF -o out/ --frame 12 --device cuda
  ri2fl predict cell.TCF -o out/ --write-tcf        # also out/cell_ri2fl.TCF with Data/3DFL
  ri2fl predict cell.TCF -o fl.ome.zarr --write-tcf  # also fl_ri2fl.TCF next to it
  ri2fl predict cell.h5 -o out/ --model runs/exp1/best.pt
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="RI tomograms: TCF, HDF5, TIFF/OME-TIFF, OME-Zarr or .npy")
    add_output_arguments(parser, "predictions")
    parser.add_argument("--model", default="default",
                        help="shipped model name or checkpoint path (default: default)")
    parser.add_argument("--targets", nargs="+", metavar="TARGET",
                        help="subset of the model's targets (default: all)")
    parser.add_argument("--tta", type=int, default=0, metavar="N",
                        help="test-time augmentation passes for data uncertainty (0 = off)")
    parser.add_argument("--mc", type=int, default=0, metavar="N",
                        help="Monte-Carlo dropout passes for model uncertainty (0 = off)")
    parser.add_argument("--batch-size", type=int, default=2, metavar="B",
                        help="patches per network call (default 2)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available, else cpu")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="auto: bf16 where the CPU/GPU computes it natively, else fp32")
    add_input_arguments(parser, "predict")
    parser.add_argument("--patch-size", type=int, nargs=3, metavar=("Z", "Y", "X"),
                        help="tile size in voxels of the model grid (default: the model's "
                             "inference tile, cut to the volume)")
    parser.add_argument("--overlap", type=float, default=0.25,
                        help="patch overlap fraction, 0 to 0.5 (default 0.25)")
    parser.add_argument("--dtype", choices=PREDICTION_DTYPES, default=DEFAULT_PREDICTION_DTYPE,
                        help="stored type of every channel, same names either way "
                             f"(default {DEFAULT_PREDICTION_DTYPE}; float16 halves the disk "
                             "use, ample for the [0, 1] fluorescence scale)")
    parser.add_argument("--write-tcf", action="store_true",
                        help="also write OUT/<name>_ri2fl.TCF (next to OUT.ome.zarr: "
                             "OUT_ri2fl.TCF): a copy of each TCF input with the channels as "
                             "Data/3DFL CH0..CH5")
    add_batch_arguments(parser)


def _check(args: argparse.Namespace) -> None:
    for name in ("tta", "mc"):
        n = getattr(args, name)
        if n < 0 or n == 1:
            raise ConfigError(f"needs 0 (off) or at least 2 passes, got {n}", f"--{name}")
    if args.batch_size < 1:
        raise ConfigError(f"must be at least 1, got {args.batch_size}", "--batch-size")
    if not 0 <= args.overlap <= 0.5:
        raise ConfigError(f"must be between 0 and 0.5, got {args.overlap}", "--overlap")
    if args.patch_size and min(args.patch_size) < 1:
        raise ConfigError("patch sizes must be positive", "--patch-size")
    check_medium_index(args.medium_index)
    check_voxel_size(args.voxel_size)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": str(args.model), "targets": args.targets, "tta": args.tta, "mc": args.mc,
        "batch_size": args.batch_size, "device": args.device, "precision": args.precision,
        "voxel_size_um": tuple(args.voxel_size) if args.voxel_size else None,
        "medium_index": args.medium_index, "frame": args.frame,
        "patch_size": tuple(args.patch_size) if args.patch_size else None,
        "overlap": args.overlap, "fill_missing": args.fill_missing, "dtype": args.dtype,
    }


def _tcf_path(input_path: Path, out_dir: Path, single: Path | None) -> Path:
    """``OUT/<input name>_ri2fl.TCF`` in a folder; ``X_ri2fl.TCF`` next to ``X.ome.zarr``."""
    if single is not None:
        return output_path_for(single, single.parent, "_ri2fl.TCF")
    return output_path_for(input_path, out_dir, "_ri2fl.TCF")


def _task(input_path: Path, output_path: Path, *, out_dir: Path, write_tcf: bool,
          single: Path | None = None, overwrite: bool = True, **options: Any) -> None:
    from ..infer import predict_file

    tcf = _tcf_path(input_path, out_dir, single) if write_tcf else None
    # a batch redoes outdated outputs: its TCF copy, ri2fl's own, is then replaced; next to
    # a single named output, only with --overwrite
    predict_file(input_path, output_path, write_tcf=tcf, overwrite=overwrite, **options)


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.write_tcf:
        bad = [p for p in args.inputs if p.suffix.lower() != ".tcf"]
        if bad:
            raise ConfigError("--write-tcf needs TCF inputs", bad[0],
                              "leave out --write-tcf for other formats")
    single = single_output_path(args.inputs, args.output, ZARR_SUFFIXES)
    if single is not None and args.write_tcf:  # refused now, not after the prediction
        tcf = _tcf_path(args.inputs[0], args.output, single)
        check_not_input(tcf, args.inputs)
        check_output(tcf, overwrite=args.overwrite)
    options = _options(args)
    task = functools.partial(_task, out_dir=args.output, write_tcf=args.write_tcf,
                             single=single, overwrite=single is None or args.overwrite,
                             **options)
    outputs = run_each(task, args, single, desc="predict",
                       options=functools.partial(with_model_digests,
                                                 {**options, "write_tcf": args.write_tcf},
                                                 ("model",)))
    for out in outputs:
        print(out)
    return 0
