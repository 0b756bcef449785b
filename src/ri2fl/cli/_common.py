"""Options and checks shared by the subcommands that read RI tomograms."""

from __future__ import annotations

import argparse

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
