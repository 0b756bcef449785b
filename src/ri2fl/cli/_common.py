"""Options and checks shared by the subcommands that read RI tomograms."""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    add_fill_missing_argument(parser)


def add_fill_missing_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--fill-missing``: read missing chunks as the fill value instead of refusing."""
    parser.add_argument("--fill-missing", action="store_true",
                        help="OME-Zarr/HDF5 inputs with missing chunks: read them as the "
                             "fill value (default: refuse, as an incomplete copy)")


def check_medium_index(value: float | None) -> None:
    """Refuse a ``--medium-index`` outside what any imaging medium has (the range files are
    held to: :data:`ri2fl.io.MEDIUM_INDEX_RANGE`)."""
    from ..errors import InputError
    from ..io import check_medium_index as check_value

    try:
        check_value(value, "--medium-index")
    except InputError as exc:
        raise ConfigError(exc.what, exc.where, "1.337 for culture medium, 1.335 for PBS") \
            from None


def check_voxel_size(value: list[float] | None) -> None:
    """Refuse a ``--voxel-size`` outside what a microscope has (0.01-50 µm)."""
    from ..errors import InputError
    from ..io import voxel_size_from

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


def add_output_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``-o/--output`` and ``--overwrite`` for commands writing one OME-Zarr per input.

    ``what`` names the outputs in the help, e.g. "predictions".
    """
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                        help=f"output folder of {what} (one <name>.ome.zarr per input), or, "
                             "for one input, the store to write: OUT.ome.zarr")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT.ome.zarr (one input) if ri2fl wrote it (default: "
                             "refuse); in a folder, outdated outputs are redone anyway")


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--scheduler``, ``--serial`` and ``--workers`` to a subcommand's parser."""
    group = parser.add_argument_group("running many inputs")
    group.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 "
                            "(default: a local cluster; a single input runs in this process)")
    group.add_argument("--serial", action="store_true",
                       help="process inputs one after another in this process")
    group.add_argument("--workers", type=int, default=None,
                       help="worker processes of the local Dask cluster (default: number of "
                            "cores)")


def run_each(task: Callable[[Path, Path], None], args: argparse.Namespace,
             single: Path | None, *, desc: str,
             options: Callable[[], Mapping[str, Any]]) -> list[Path]:
    """Run ``task`` on every input of ``args``: into exactly ``single`` when ``-o`` names one
    output (see :func:`ri2fl.batch.single_output_path`), else one ``<name>.ome.zarr`` per
    input in the folder ``-o`` (resumable, see :func:`ri2fl.batch.run_batch`).

    ``options()`` gives the options that shape an output; it is called for a folder only,
    where they decide which outputs are complete.
    """
    from ..batch import run_batch, run_single

    # Dask workers do not run main(): their warnings are made one line there too
    task = functools.partial(_with_warning_lines, task, desc)
    if single is not None:
        return [run_single(task, args.inputs[0], single, overwrite=args.overwrite)]
    return run_batch(task, args.inputs, args.output, ".ome.zarr", scheduler=args.scheduler,
                     serial=args.serial, workers=args.workers, desc=desc, options=options())


@contextlib.contextmanager
def warning_lines(command: str) -> Iterator[None]:
    """Show ri2fl's off-domain warnings as one line each on stderr, once per message:
    ``ri2fl <command>: warning: <message>``; other warnings as Python shows them."""
    from ..preprocess.domain import OffDomainWarning

    with warnings.catch_warnings():
        previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, OffDomainWarning):
                print(f"ri2fl {command}: warning: {message}", file=sys.stderr, flush=True)
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.simplefilter("default", OffDomainWarning)
        warnings.showwarning = show
        yield


def _with_warning_lines(task: Callable[[Path, Path], None], command: str, input_path: Path,
                        output_path: Path) -> None:
    """``task(input_path, output_path)`` under :func:`warning_lines` (picklable for Dask)."""
    with warning_lines(command):
        task(input_path, output_path)
