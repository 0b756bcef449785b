"""``ri2fl info``: what a tomogram file holds (shape, voxel size, RI range, frames, channels)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..io import read
from ..io.volume import Volume
from ._common import add_fill_missing_argument

HELP = "show shape, voxel size, RI range, time points and channels of a tomogram file"

EPILOG = """Examples:
  ri2fl info cell.TCF
  ri2fl info cell.TCF --json
  ri2fl info timelapse.TCF --frame 12 --json
  ri2fl info stack.tif --voxel-size 0.2 0.15 0.15
  ri2fl info predictions/cell.ome.zarr
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("path", type=Path, help="TCF, HDF5, TIFF/OME-TIFF, OME-Zarr or .npy")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--frame", type=int, default=0, metavar="T",
                        help="time point whose value range is shown (default 0)")
    parser.add_argument("--voxel-size", type=float, nargs=3, metavar=("Z", "Y", "X"),
                        help="voxel size in µm when the file has none (TIFF, .npy)")
    parser.add_argument("--modality", choices=("ri", "fl", "mip"), default="ri",
                        help="TCF/HDF5: which data to describe (default ri)")
    parser.add_argument("--dataset", help="HDF5: dataset to read; OME-Zarr: resolution level")
    add_fill_missing_argument(parser)


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def describe(vol: Volume, frame: int = 0) -> dict[str, Any]:
    """The facts ``ri2fl info`` prints, as a JSON-ready dict (loads one frame only)."""
    one = vol.frame(frame) if vol.time_points > 1 else vol.frame(0)
    data = np.asarray(one.data)
    is_ri = vol.channel_names in (["ri"], ["mip"])  # RI tomogram or its max projection
    lo = float(data.min()) if data.size else float("nan")
    hi = float(data.max()) if data.size else float("nan")
    fl = vol.metadata.get("fl_channels", [])
    return {
        "path": vol.metadata.get("path"),
        "format": vol.metadata.get("format"),
        "format_version": vol.metadata.get("FormatVersion"),
        "shape": list(vol.spatial_shape),
        "voxel_size_um": [round(v, 6) for v in vol.voxel_size_um],
        "extent_um": [round(n * v, 4) for n, v in zip(vol.spatial_shape, vol.voxel_size_um)],
        "axes": vol.axes,
        "dtype": "float32",
        "time_points": vol.time_points,
        "time_interval_s": vol.time_interval_s,
        "frame": frame,
        "ri_min": _finite_or_none(lo) if is_ri else None,
        "ri_max": _finite_or_none(hi) if is_ri else None,
        "value_min": _finite_or_none(lo),
        "value_max": _finite_or_none(hi),
        "medium_index": vol.medium_index,
        "channel_names": list(vol.channel_names),
        "fl_channels": len(fl),
        "fl_channel_names": list(fl),
    }


def _text(info: dict[str, Any]) -> str:
    z, y, x = info["shape"]
    vz, vy, vx = info["voxel_size_um"]
    lines = [
        f"{info['path']}",
        f"  format        {info['format']}"
        + (f" (version {info['format_version']})" if info["format_version"] else ""),
        f"  shape (z,y,x) {z} x {y} x {x} voxels",
        f"  voxel (z,y,x) {vz:g} x {vy:g} x {vx:g} µm   extent "
        + " x ".join(f"{e:g}" for e in info["extent_um"]) + " µm",
        f"  time points   {info['time_points']}"
        + (f" every {info['time_interval_s']:g} s" if info["time_interval_s"] else ""),
        f"  channels      {', '.join(info['channel_names'])}",
    ]
    if info["ri_min"] is not None:
        lines.append(f"  RI range      {info['ri_min']:.4f} .. {info['ri_max']:.4f}"
                     f" (frame {info['frame']})")
    else:
        lo, hi = (f"{v:.6g}" if v is not None else "n/a"
                  for v in (info["value_min"], info["value_max"]))
        lines.append(f"  value range   {lo} .. {hi}")
    medium = info["medium_index"]
    lines.append(f"  medium index  {medium:.4f}" if medium is not None else
                 "  medium index  unknown")
    if info["fl_channels"]:
        lines.append(f"  fluorescence  {info['fl_channels']} channel(s): "
                     + ", ".join(info["fl_channel_names"]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    vol = read(args.path, modality=args.modality, voxel_size_um=args.voxel_size,
               fill_missing=args.fill_missing,
               dataset=args.dataset)
    if vol.time_points > 1 and not -vol.time_points <= args.frame < vol.time_points:
        from ..errors import InputError
        raise InputError(f"frame {args.frame} out of range (0..{vol.time_points - 1})",
                         args.path)
    info = describe(vol, args.frame)
    print(json.dumps(info, indent=2) if args.json else _text(info))
    return 0
