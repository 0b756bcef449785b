"""``ri2fl stitch``: register overlapping tiles of a large field and fuse them into OME-Zarr."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

from .._atomic import check_not_input, check_output
from ..errors import ConfigError
from ..stitch import fused_shape, stitch_tiles
from ..stitch.files import TileFiles, positions_from_metadata, stitch_to_ome_zarr

HELP = "stitch overlapping tiles of a large field of view into one OME-Zarr volume"

EPILOG = """Tiles are given in row-major order (row 0 left to right, then row 1, ...): name them
with zero-padded numbers (tile_03.TCF, not tile_3.TCF) so that the shell sorts them so.
Their displacements are measured by phase correlation of neighbouring overlaps (sub-voxel),
reconciled over the whole grid, and overlaps are blended; the result streams to disk.

Examples:
  ri2fl stitch tile_*.TCF -o field.ome.zarr --grid 3x4 --overlap 0.15
  ri2fl stitch r0c0.h5 r0c1.h5 r1c0.h5 r1c1.h5 -o field.ome.zarr --grid 2x2
  ri2fl stitch tile_*.TCF -o field.ome.zarr --positions metadata   # stage positions
  ri2fl stitch tile_*.ome.zarr -o field.ome.zarr --grid 7x7 --frame 12 --json
  ri2fl stitch tile_*.TCF -o field.ome.zarr --grid 3x4 --overwrite   # replace an earlier field
"""


def _grid(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX×,]\s*(\d+)\s*", text)
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS such as 3x4, got {text!r}")
    return int(m[1]), int(m[2])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("tiles", nargs="+", type=Path, metavar="TILE",
                        help="tile files (TCF, HDF5, TIFF, OME-Zarr, .npy), row-major")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output OME-Zarr store, e.g. field.ome.zarr")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the store -o if ri2fl wrote it (default: refuse)")
    parser.add_argument("--grid", type=_grid, metavar="ROWSxCOLS",
                        help="grid layout (default: square grid, or stage positions)")
    parser.add_argument("--overlap", type=float, default=0.1, metavar="FRACTION",
                        help="nominal overlap of neighbours, fraction of a tile (default 0.1)")
    parser.add_argument("--positions", choices=("auto", "grid", "metadata"), default="auto",
                        help="nominal tile positions: from --grid, from the files' stage "
                             "positions, or auto (grid when --grid is given, else metadata "
                             "when every tile has a position, else a square grid)")
    parser.add_argument("--frame", type=int, default=0, metavar="T",
                        help="time point of multi-frame tiles (default 0)")
    parser.add_argument("--blend", choices=("linear", "average"), default="linear",
                        help="overlap blending: feathered (linear) or plain mean")
    parser.add_argument("--upsample", type=int, default=10, metavar="N",
                        help="sub-voxel precision 1/N of the registration (default 10)")
    parser.add_argument("--fill", type=float, default=None,
                        help="value where no tile lies (default: the medium index, else 0)")
    parser.add_argument("--voxel-size", type=float, nargs=3, metavar=("Z", "Y", "X"),
                        help="voxel size in µm for tiles without one (TIFF, .npy)")
    parser.add_argument("--json", action="store_true",
                        help="print the tile offsets and output shape as JSON")


def _layout(args: argparse.Namespace, files: TileFiles):
    """(grid, positions) to register with, following --positions."""
    n = len(files)
    want_metadata = args.positions == "metadata" or (args.positions == "auto"
                                                     and args.grid is None)
    if want_metadata:
        positions = positions_from_metadata(files)
        if positions is not None:
            return None, positions
        if args.positions == "metadata":
            raise ConfigError("not every tile has a stage position in its metadata",
                              "--positions", "give the layout with --grid ROWSxCOLS")
    grid = args.grid
    if grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ConfigError(f"{n} tiles are not a square grid and have no stage positions",
                              "--grid", "give the layout with --grid ROWSxCOLS")
        grid = (side, side)
    if grid[0] * grid[1] != n:
        raise ConfigError(f"grid {grid[0]}x{grid[1]} needs {grid[0] * grid[1]} tiles, got {n}",
                          "--grid")
    return grid, None


def run(args: argparse.Namespace) -> int:
    if args.upsample < 1:
        raise ConfigError("--upsample must be at least 1", "--upsample")
    check_not_input(args.output, args.tiles)
    check_output(args.output, overwrite=args.overwrite)
    cols = args.grid[1] if args.grid else math.isqrt(len(args.tiles)) + 1
    files = TileFiles(args.tiles, frame=args.frame, cache=2 * cols + 2,
                      voxel_size_um=args.voxel_size)
    grid, positions = _layout(args, files)
    offsets = stitch_tiles(files, grid=grid, overlap=args.overlap, positions=positions,
                           upsample_factor=args.upsample)
    fill = args.fill if args.fill is not None else (files.medium_index or 0.0)
    provenance = {"tiles": [p.name for p in files.paths],
                  "grid": list(grid) if grid else None, "overlap": args.overlap}
    stitch_to_ome_zarr(args.output, files, offsets, files.voxel_size_um, blend=args.blend,
                       fill=fill, medium_index=files.medium_index, provenance=provenance,
                       overwrite=args.overwrite)
    shape = fused_shape([t.shape for t in files], offsets)
    if args.json:
        print(json.dumps({"output": str(args.output), "shape": list(shape),
                          "voxel_size_um": list(files.voxel_size_um),
                          "offsets_voxels": np.round(offsets, 3).tolist()}))
    else:
        print(f"stitched {len(files)} tiles into {args.output} "
              f"({' x '.join(map(str, shape))} voxels, z y x)")
    return 0
