"""Options and checks shared by the subcommands that read RI tomograms."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def add_input_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """Add ``--voxel-size``, ``--medium-index`` and ``--frame`` (``verb``: "predict", ...)."""
    parser.add_argument("--voxel-size", type=float, nargs=3, metavar=("Z", "Y", "X"),
                        help="input voxel size in µm (overrides the file's metadata)")
    parser.add_argument("--medium-index", type=float, default=None, metavar="N",
                        help="medium refractive index (default: the file's, else 1.337)")
    parser.add_argument("--frame", type=int, default=None, metavar="T",
                        help=f"{verb} only this time point (default: every frame)")


def check_medium_index(value: float | None) -> None:
    """Refuse a ``--medium-index`` outside what any imaging medium has (the range files are
    held to: :data:`ri2fl.io._checks.MEDIUM_INDEX_RANGE`)."""
    from ..errors import InputError
    from ..io._checks import check_medium_index as check_value

    try:
        check_value(value, "--medium-index")
    except InputError as exc:
        raise ConfigError(exc.what, exc.where, "1.337 for culture medium, 1.335 for PBS") \
            from None


def check_voxel_size(value: list[float] | None) -> None:
    """Refuse a ``--voxel-size`` outside what a microscope has (0.01-50 µm)."""
    from ..errors import InputError
    from ..io._checks import voxel_size_from

    if value is None:
        return
    try:
        voxel_size_from(value, "--voxel-size")
    except InputError as exc:
        raise ConfigError(exc.what, "--voxel-size", "give the voxel size (z, y, x) in µm, "
                          "e.g. --voxel-size 0.2 0.15 0.15") from None


def with_model_digests(options: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``options`` plus the SHA-256 of each model named under ``keys``, for resumable runs.

    A name such as ``default`` or ``runs/x/best.pt`` says nothing about the weights behind it;
    with the digest, outputs made by weights retrained since are redone, not skipped.
    """
    from ..models import model_sha256

    return {**options, **{f"{key}_sha256": model_sha256(options[key]) for key in keys}}


def check_file_output(output: Path, inputs: Sequence[Path | None], overwrite: bool) -> None:
    """Refuse, before any work, a file output that is (or lies in) an input, or that exists
    and may not be replaced (see :func:`ri2fl._atomic.atomic_path`).

    A plain folder of inputs (``--predictions predictions/``) is no obstacle: a file written
    into it changes none of them. An OME-Zarr store is one input, never to be written into.
    """
    from .._atomic import check_not_input, check_output
    from ..io.ome_zarr import is_ome_zarr

    whole = [p for p in inputs if p is not None and (not p.is_dir() or is_ome_zarr(p))]
    check_not_input(output, whole)
    check_output(output, overwrite=overwrite)
