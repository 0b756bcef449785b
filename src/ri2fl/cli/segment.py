"""``ri2fl segment``: organelle masks and cell / nucleus instances as the NGFF labels of the RI."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

import numpy as np

from ..batch import ZARR_SUFFIXES, single_output_path
from ..errors import ConfigError
from ._common import (
    add_batch_arguments,
    add_input_arguments,
    add_output_arguments,
    check_medium_index,
    check_voxel_size,
    run_each,
    with_model_digests,
)

HELP = "segment organelles, nuclei and individual cells in RI tomograms"

EPILOG = """Writes one OUT/<name>.ome.zarr per input: the RI (float32, axes zyx, or tzyx for
time-lapses) with the segmentation as its OME-NGFF labels group (viewers overlay them as
labels): labels/cell_labels and labels/nucleus_labels (int32 instances; cell i holds
nucleus i), labels/nucleus, nucleolus, membrane (whole cell) and lipid_droplets (uint8 0/1
masks). ri2fl profile given this store as INPUT reuses the segmentation.
With one input, -o X.ome.zarr writes exactly X.ome.zarr (replaced only with --overwrite,
and only if ri2fl wrote it); any other OUT is a folder (a rerun skips complete outputs).

Methods:
  network    multi-task organelle U-Net + nucleus-conditioned cell network (Choi et al.)
  watershed  random-forest voxel classifier of the nucleus/membrane fluorescence that
             --fl-model infers + nuclei by threshold + seeded watershed (RI2FL); with
             --fl none the classifier sees RI features instead

Examples:
  ri2fl segment cell.TCF -o cell_masks.ome.zarr
  ri2fl segment cell.TCF -o masks/
  ri2fl segment data/*.TCF -o masks/ --method watershed
  ri2fl segment data/*.TCF -o masks/ --method watershed --fl none
  ri2fl segment hl60.h5 -o masks/ --voxel-size 0.139 0.139 0.139 --medium-index 1.335
  ri2fl segment timelapse.TCF -o masks/ --frame 0 --serial
  ri2fl segment cell.h5 -o masks/ --model runs/segment/organelles/best.pt
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="RI tomograms: TCF, HDF5, TIFF/OME-TIFF, OME-Zarr or .npy")
    add_output_arguments(parser, "label stacks")
    parser.add_argument("--method", choices=("network", "watershed"), default="network",
                        help="how cells are separated (default: network)")
    parser.add_argument("--fl", choices=("none", "infer"), default=None,
                        help="watershed only: classify the nucleus/membrane fluorescence "
                             "inferred by --fl-model (infer, default) or RI features (none)")
    parser.add_argument("--model", default="segment-default",
                        help="organelle network: shipped name or checkpoint path")
    parser.add_argument("--cell-model", default="cell-default",
                        help="cell network for --method network: shipped name or checkpoint")
    parser.add_argument("--fl-model", default="default",
                        help="fluorescence model for the watershed route (default: default)")
    parser.add_argument("--cell-assign", choices=("flood", "argmax"), default="flood",
                        help="network route: grow cells from the voxels the cell network is "
                             "sure of (flood, default) or give each voxel to its most "
                             "probable nucleus (argmax, Choi et al.)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="probability threshold of the organelle masks (default 0.5)")
    add_input_arguments(parser, "segment")
    add_batch_arguments(parser)


def _check(args: argparse.Namespace) -> None:
    if not 0 < args.threshold < 1:
        raise ConfigError(f"must be between 0 and 1, got {args.threshold}", "--threshold")
    if args.fl is not None and args.method != "watershed":
        raise ConfigError(f"--fl {args.fl} applies to --method watershed only", "--fl")
    check_medium_index(args.medium_index)
    check_voxel_size(args.voxel_size)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "method": args.method,
        "fl": args.fl or ("infer" if args.method == "watershed" else "none"),
        "model": str(args.model),
        "cell_model": str(args.cell_model), "fl_model": str(args.fl_model),
        "threshold": args.threshold, "cell_assign": args.cell_assign,
        "voxel_size_um": tuple(args.voxel_size) if args.voxel_size else None,
        "medium_index": args.medium_index, "frame": args.frame,
        "fill_missing": args.fill_missing,
    }


def _model_keys(options: dict[str, Any]) -> tuple[str, ...]:
    """The networks a segment run loads: organelles, cells (network route), FL if inferred."""
    keys = ("model", "cell_model") if options["method"] == "network" else ("model",)
    return keys + (("fl_model",) if options["fl"] == "infer" else ())


def segment_file(input_path: Path, output_path: Path, *, method: str = "network",
                 fl: str = "none", model: str = "segment-default",
                 cell_model: str = "cell-default", fl_model: str = "default",
                 threshold: float = 0.5, cell_assign: str = "flood",
                 voxel_size_um: tuple | None = None,
                 medium_index: float | None = None, frame: int | None = None,
                 fill_missing: bool = False) -> Path:
    """Segment every frame of one input file and write the label stack as OME-Zarr."""
    from ..constants import CANONICAL_VOXEL_SIZE_UM, MEDIUM_INDEX
    from ..io import read, write_ome_zarr
    from ..models import load
    from ..segment import LABEL_CHANNELS, check_segment_budget, segment_volume

    vol = read(input_path, frame=frame, voxel_size_um=voxel_size_um,
               medium_index=medium_index, fill_missing=fill_missing)
    medium = vol.medium_index if vol.medium_index is not None else MEDIUM_INDEX
    nets = {"model": load(model),  # loaded once for all frames
            "cell_model": load(cell_model) if method == "network" else cell_model,
            "fl_model": load(fl_model) if fl == "infer" else fl_model}
    frames = range(vol.time_points) if vol.axes.startswith("t") else [None]
    # refused before any work; the RI (float32), the int32 instances and the uint8 masks of
    # all frames are held until written
    n_masks = len(LABEL_CHANNELS) - 2
    held_bytes = (4.0 + 2 * 4.0 + n_masks) * len(frames) * np.prod(vol.spatial_shape,
                                                                    dtype=float)
    check_segment_budget(vol.spatial_shape, vol.voxel_size_um,
                         getattr(nets["model"], "voxel_size_um", CANONICAL_VOXEL_SIZE_UM),
                         extra_bytes=held_bytes, where=input_path)
    ris, segs = [], []
    for t in frames:
        ri = np.asarray(vol.frame(t).data if t is not None else vol.data, np.float32)
        segs.append(segment_volume(
            ri, vol.voxel_size_um, medium, method=method,
            fl="infer" if fl == "infer" else None, threshold=threshold,
            cell_assign=cell_assign, **nets,
            # one off-domain check per input, on its first frame
            domain_check=Path(input_path).name if t == frames[0] else False))
        ris.append(ri)
    timelapse = frames != [None]
    write_ome_zarr(output_path, np.stack(ris) if timelapse else ris[0], vol.voxel_size_um,
                   channel_names=["ri"], axes="tzyx" if timelapse else "zyx",
                   time_interval_s=vol.time_interval_s, medium_index=medium,
                   labels=_labels_of(segs, timelapse))
    return output_path


def _labels_of(segs: list, timelapse: bool) -> dict[str, np.ndarray]:
    """The NGFF labels of the segmented frames: int32 instances, uint8 0/1 masks."""
    first = segs[0]
    planes = {"cell_labels": lambda s: s.cell_labels,
              "nucleus_labels": lambda s: s.nucleus_labels,
              **{m: (lambda s, m=m: s.masks[m].astype(np.uint8)) for m in first.masks}}
    return {name: np.stack([get(s) for s in segs]) if timelapse else get(first)
            for name, get in planes.items()}


def run(args: argparse.Namespace) -> int:
    _check(args)
    single = single_output_path(args.inputs, args.output, ZARR_SUFFIXES)
    options = _options(args)
    task = functools.partial(segment_file, **options)
    outputs = run_each(task, args, single, desc="segment",
                       options=functools.partial(with_model_digests, options,
                                                 _model_keys(options)))
    for out in outputs:
        print(out)
    return 0
