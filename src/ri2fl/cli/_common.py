"""Options and checks shared by the subcommands that read RI tomograms."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
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
    """Refuse a ``--medium-index`` outside what any imaging medium has."""
    if value is not None and not 1.0 <= value <= 1.6:
        raise ConfigError(f"implausible medium index {value}", "--medium-index",
                          "1.337 for culture medium, 1.335 for PBS")


def with_model_digests(options: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``options`` plus the SHA-256 of each model named under ``keys``, for resumable runs.

    A name such as ``default`` or ``runs/x/best.pt`` says nothing about the weights behind it;
    with the digest, outputs made by weights retrained since are redone, not skipped.
    """
    from ..models import model_sha256

    return {**options, **{f"{key}_sha256": model_sha256(options[key]) for key in keys}}
