"""``ri2fl convert``: any supported tomogram to OME-Zarr or OME-TIFF, optionally resampled."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .._atomic import check_not_input, check_output
from ..constants import CANONICAL_VOXEL_SIZE_UM, MEDIUM_INDEX
from ..errors import InputError
from ..io import create_ome_zarr, read, write_ome_tiff
from ..io.tcf import write_tcf
from ..io.volume import Volume
from ..preprocess import check_grid_budget, resample, resampled_voxel_size
from ..progress import progress
from ._common import add_fill_missing_argument, check_voxel_size

HELP = "convert a tomogram (TCF, HDF5, TIFF, OME-Zarr, .npy) to OME-Zarr, OME-TIFF or TCF"

EPILOG = """The output format follows OUT's suffix: .ome.zarr (NGFF 0.5, zarr v3; --ngff 0.4 for
older viewers), .ome.tif / .ome.tiff, or .TCF (RI only, FormatVersion 1.4, e.g. to give a
simulated or converted tomogram to Tomocube software). Time-lapses are converted frame by
frame into OME-Zarr. An existing OUT is replaced only with --overwrite, and only if ri2fl
wrote it; OUT may not be, hold or lie inside the input.

Examples:
  ri2fl convert cell.TCF cell.ome.zarr
  ri2fl convert cell.TCF cell_canonical.ome.zarr --resample
  ri2fl convert timelapse.TCF t12.ome.tif --frame 12
  ri2fl convert stack.tif stack.ome.zarr --voxel-size 0.2 0.15 0.15
  ri2fl convert cell.TCF cell_fl.ome.zarr --modality fl
  ri2fl convert stitched.ome.zarr stitched_pyramid.ome.zarr --levels 4
  ri2fl convert cell.ome.tif cell.TCF --tcf-layout ldm
  ri2fl convert cell.TCF cell.ome.zarr --overwrite     # replace an earlier conversion
"""

_ZARR = (".ome.zarr", ".zarr")
_TIFF = (".ome.tif", ".ome.tiff", ".tif", ".tiff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("input", type=Path, help="input tomogram")
    parser.add_argument("output", type=Path, help="output .ome.zarr or .ome.tif")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT if ri2fl wrote it (default: refuse)")
    parser.add_argument("--voxel-size", type=float, nargs=3, metavar=("Z", "Y", "X"),
                        help="input voxel size in µm (overrides the file's metadata)")
    parser.add_argument("--resample", action="store_true",
                        help="resample to the canonical "
                             f"{' x '.join(map(str, CANONICAL_VOXEL_SIZE_UM))} µm (z, y, x) grid")
    parser.add_argument("--frame", type=int, metavar="T",
                        help="convert only this time point (default: all)")
    parser.add_argument("--modality", choices=("ri", "fl", "mip"), default="ri",
                        help="TCF/HDF5: which data to convert (default ri)")
    parser.add_argument("--dataset", help="HDF5: dataset to read; OME-Zarr: resolution level")
    add_fill_missing_argument(parser)
    parser.add_argument("--ngff", choices=("0.5", "0.4"), default="0.5",
                        help="OME-Zarr version (default 0.5; 0.4 = zarr v2)")
    parser.add_argument("--tcf-layout", choices=("dataset", "ldm"), default="dataset",
                        help="TCF output: one uint16 dataset per frame, or tiled LDM groups")
    parser.add_argument("--levels", type=int, default=1, metavar="N",
                        help="OME-Zarr resolution levels, y and x halved per level "
                             "(default 1; use 3-5 for large stitched fields)")


def _output_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_ZARR):
        return "zarr"
    if name.endswith(_TIFF):
        return "tiff"
    if name.endswith(".tcf"):
        return "tcf"
    raise InputError("unknown output format", path,
                     "end OUT with .ome.zarr, .ome.tif or .TCF")


def _frames(vol: Volume, do_resample: bool):
    """Yield each frame (c?, z, y, x) as float32, resampled when asked."""
    for t in range(vol.time_points):
        data = np.asarray(vol.frame(t).data, dtype=np.float32)
        yield resample(data, vol.voxel_size_um) if do_resample else data


def run(args: argparse.Namespace) -> int:
    kind = _output_kind(args.output)
    check_voxel_size(args.voxel_size)
    check_not_input(args.output, [args.input])
    check_output(args.output, overwrite=args.overwrite)
    vol = read(args.input, frame=args.frame, modality=args.modality,
               fill_missing=args.fill_missing,
               voxel_size_um=args.voxel_size, dataset=args.dataset)
    spatial = vol.spatial_shape
    voxel = vol.voxel_size_um
    if args.resample:
        n_channels = int(np.prod(vol.shape[len(vol.axes) - len(vol.axes.lstrip("t")):-3]))
        # refused before the output is created: one resampled frame is held in memory
        spatial = check_grid_budget(spatial, vol.voxel_size_um, channels=n_channels,
                                    where=args.input, grid_name="the canonical")
        voxel = resampled_voxel_size(vol.spatial_shape, vol.voxel_size_um)
    frame_axes = vol.axes.lstrip("t")
    frame_shape = (*vol.shape[len(vol.axes) - len(frame_axes):-3], *spatial)
    frames = progress(_frames(vol, args.resample), desc="convert", total=vol.time_points)
    axes = ("t" + frame_axes) if vol.time_points > 1 else frame_axes
    if kind == "zarr":
        shape = ((vol.time_points, *frame_shape) if vol.time_points > 1 else frame_shape)
        with create_ome_zarr(args.output, shape, voxel, vol.channel_names, axes=axes,
                             ngff_version=args.ngff, time_interval_s=vol.time_interval_s,
                             medium_index=vol.medium_index, levels=args.levels,
                             overwrite=args.overwrite) as out:
            for t, data in enumerate(frames):
                out[(t,) if vol.time_points > 1 else ...] = data
    elif kind == "tcf":
        if frame_axes != "zyx" or vol.channel_names != ["ri"]:
            raise InputError(f"a TCF output holds RI tomograms; the input has channels "
                             f"{vol.channel_names}", args.output,
                             "convert RI (--modality ri), or write .ome.zarr")
        write_tcf(args.output, list(frames), voxel, layout=args.tcf_layout,
                  medium_index=vol.medium_index or MEDIUM_INDEX,
                  time_interval_s=vol.time_interval_s or 1.0, overwrite=args.overwrite)
    else:
        stack = list(frames)
        data = np.stack(stack) if vol.time_points > 1 else stack[0]
        write_ome_tiff(args.output, data, voxel, vol.channel_names, axes=axes,
                       overwrite=args.overwrite)
    print(f"wrote {args.output} ({' x '.join(map(str, spatial))} voxels of "
          f"{' x '.join(f'{v:.4g}' for v in voxel)} µm, {vol.time_points} time point(s))")
    return 0
