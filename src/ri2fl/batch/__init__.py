"""Running one task over many inputs: one output per input in an output folder.

The CLIs of ``predict``, ``segment`` and ``profile`` call :func:`run_batch` with a function
that processes one input into one output path. This module decides where it runs (a Dask
cluster, or in-process with ``serial=True``), skips outputs that are already complete, and
writes each output atomically.

A run can be killed at any moment (even by SIGKILL) and started again with the same
command: finished outputs are skipped, half-written ones (temporary names) are removed and
redone, and the folder ends as an uninterrupted run would have left it. Only one run at a
time may write into a folder. See ``docs/scaling.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._atomic import atomic_path
from ..errors import ConfigError, InputError, Ri2flError
from ..progress import progress
from ._fingerprint import (
    RUN_ONLY_OPTIONS,
    fingerprint,
    input_digest,
    input_signature,
    options_from_args,
)
from ._lock import LOCK_NAME, output_lock
from ._manifest import MANIFEST_NAME, Manifest

__all__ = [
    "LOCK_NAME",
    "MANIFEST_NAME",
    "RUN_ONLY_OPTIONS",
    "add_batch_arguments",
    "options_from_args",
    "output_path_for",
    "run_batch",
]

log = logging.getLogger(__name__)

#: Seconds to wait for an existing Dask scheduler to answer.
SCHEDULER_TIMEOUT_S = 30.0

_INPUT_EXTENSIONS = (".ome.zarr", ".ome.tiff", ".ome.tif", ".tiff", ".tif", ".zarr", ".h5",
                     ".hdf5", ".tcf", ".npy")


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


def output_path_for(input_path: str | Path, out_dir: str | Path, suffix: str) -> Path:
    """``<out_dir>/<input stem><suffix>``, e.g. ``cell.TCF`` -> ``out/cell.ome.zarr``.

    Only the input's file name is used, so no input path can place an output outside
    ``out_dir``.

    Raises
    ------
    ConfigError
        If ``suffix`` holds a path separator or the input has no usable name.
    """
    if not suffix or any(sep in suffix for sep in ("/", "\\", "\0")) or ".." in suffix:
        raise ConfigError(f"invalid output suffix {suffix!r}", hint="use e.g. '.ome.zarr'")
    name = Path(input_path).name
    for ext in _INPUT_EXTENSIONS:
        if name.lower().endswith(ext.lower()) and len(name) > len(ext):
            name = name[: -len(ext)]
            break
    if name in ("", ".", "..") or "\0" in name:
        raise ConfigError("input has no file name to name its output after", input_path)
    return Path(out_dir) / f"{name}{suffix}"


def _plan(inputs: Sequence[str | Path], out_dir: Path, suffix: str) -> list[Path]:
    """Output paths, after checking that inputs exist and no two share an output."""
    outputs: list[Path] = []
    seen: dict[str, Path] = {}
    for inp in inputs:
        inp = Path(inp)
        if not inp.exists():
            raise InputError("no such file or folder", inp, "check the input paths")
        out = output_path_for(inp, out_dir, suffix)
        if out.name in seen:
            raise ConfigError(f"inputs {seen[out.name]} and {inp} would both write {out}",
                              out_dir, "rename one of them or run them into separate folders")
        if inp.resolve() == out.resolve():
            raise ConfigError("the output would overwrite its own input", inp,
                              "choose another output folder with -o")
        seen[out.name] = inp
        outputs.append(out)
    return outputs


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _clean_partials(out_dir: Path, names: Sequence[str]) -> int:
    """Remove temporary outputs (``ri2fl._atomic`` names) a killed run left behind.

    Writers that are atomic themselves (``create_ome_zarr``) nest a temporary name inside
    the one the task was given, ``..<name>.<hex>.partial<ext>.<hex>.partial<ext>``: one
    leading dot per level.
    """
    patterns = [re.compile(rf"^\.+{re.escape(n)}\.[0-9a-f]{{8}}\.(partial.*|old)$")
                for n in names]
    removed = 0
    for entry in os.scandir(out_dir):
        if entry.name.startswith(".") and any(p.match(entry.name) for p in patterns):
            _remove(Path(entry.path))
            removed += 1
    return removed


def _execute(task: Callable[[Path, Path], None], input_path: str, output_path: str,
             digest: str | None) -> tuple[str, str]:
    """Run ``task`` for one input into a temporary path; rename it into place when done.

    Runs on a Dask worker or in-process; returns the input's (signature, digest) as read
    before the task, for the manifest.
    """
    inp = Path(input_path)
    signature = input_signature(inp)
    digest = digest or input_digest(inp)
    with atomic_path(output_path) as tmp:
        task(inp, tmp)
    return signature, digest


class _Run:
    """Book-keeping of one batch: the manifest, completions and failures."""

    def __init__(self, manifest: Manifest, options_sha256: str):
        self.manifest = manifest
        self.options_sha256 = options_sha256
        self.failures: list[tuple[Path, BaseException]] = []

    def done(self, inp: Path, out: Path, result: tuple[str, str]) -> None:
        signature, digest = result
        if os.path.lexists(out):
            self.manifest.record(out.name, inp, signature, digest, self.options_sha256)
            self.manifest.save()

    def failed(self, inp: Path, exc: BaseException) -> None:
        log.error("%s: failed: %s", inp, exc)
        self.failures.append((inp, exc))


def _run_serial(jobs: list[tuple[Path, Path, str | None]], task: Callable, run: _Run,
                desc: str) -> None:
    for inp, out, digest in progress(jobs, desc=desc):
        try:
            result = _execute(task, str(inp), str(out), digest)
        except Exception as exc:
            run.failed(inp, exc)
        else:
            run.done(inp, out, result)


# Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's mmap threshold
# at 128 KiB: every tile-sized array is then a fresh mmap whose pages fault in again. Measured on
# a 32 x 256 x 256 prediction: 3x the page faults and 7.1 s instead of 2.5 s of system time per
# input. Larger thresholds keep freed tiles in the heap for the next one.
WORKER_MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": str(256 * 2**20),
                     "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20)}


def _client(scheduler: str | None, workers: int | None, n_jobs: int):
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler, timeout=SCHEDULER_TIMEOUT_S), None
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler: {exc}", scheduler,
                              "check the address (tcp://HOST:PORT) or drop --scheduler") from None
    n = max(1, min(workers or os.cpu_count() or 1, n_jobs))
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{key}": value
                          for key, value in WORKER_MALLOC_ENV.items()}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _run_dask(jobs: list[tuple[Path, Path, str | None]], task: Callable, run: _Run, desc: str,
              scheduler: str | None, workers: int | None) -> None:
    from distributed import as_completed

    client, cluster = _client(scheduler, workers, len(jobs))
    try:
        futures = {client.submit(_execute, task, str(inp), str(out), digest, pure=False,
                                 key=f"ri2fl-{out.name}-{os.getpid()}-{i}"): (inp, out)
                   for i, (inp, out, digest) in enumerate(jobs)}
        for fut in progress(as_completed(futures), desc=desc, total=len(futures)):
            inp, out = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:
                run.failed(inp, exc)
            else:
                run.done(inp, out, result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _raise_failures(failures: list[tuple[Path, BaseException]], n_inputs: int) -> None:
    if not failures:
        return
    first_input, first = failures[0]
    if n_inputs == 1 or not isinstance(first, Ri2flError):
        raise first
    what = (f"{len(failures)} of {n_inputs} inputs failed, the first with: "
            f"{first.one_line()}")
    raise InputError(what, first_input, "the other outputs are complete; fix or remove the "
                                        "failing inputs and run the same command again")


def run_batch(task: Callable[[Path, Path], None], inputs: Sequence[str | Path],
              out_dir: str | Path, suffix: str, *, scheduler: str | None = None,
              serial: bool = False, workers: int | None = None, desc: str = "inputs",
              options: Mapping[str, Any] | argparse.Namespace | None = None) -> list[Path]:
    """Run ``task(input_path, tmp_output_path)`` for every input; return the output paths.

    ``task`` writes one output at the temporary path it is given; the output is renamed to
    ``output_path_for(input, out_dir, suffix)`` only when ``task`` returns. Outputs already
    made from the same input content with the same options are skipped.

    Parameters
    ----------
    task : callable
        ``task(input_path, tmp_output_path)``. It must be picklable (closures are fine) to
        run on a cluster; load big objects such as models inside it, not around it.
    inputs : sequence of path
        Input files or folders (OME-Zarr).
    out_dir : path
        Output folder; created if needed. One run at a time may use it.
    suffix : str
        Output name suffix, e.g. ``".ome.zarr"``.
    scheduler : str, optional
        Address of a running Dask scheduler. Default: a local cluster of ``workers``
        processes (one thread each), or this process for a single input.
    serial : bool
        Run every input in this process, one after another.
    workers : int, optional
        Processes of the local cluster; default the number of cores.
    desc : str
        Label of the progress bar.
    options : mapping or argparse.Namespace, optional
        The options that shape an output (model, TTA, ...): an output made with other
        options is redone. Default: a fingerprint of ``task`` itself (its function, partial
        arguments and closure values).

    Returns
    -------
    list of Path
        One output path per input, in input order.

    Raises
    ------
    ConfigError
        If another run holds ``out_dir``, or two inputs would write the same output.
    InputError
        If an input is missing, or some inputs failed (the others are still completed).
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"needs at least one worker, got {workers}", "--workers")
    out_dir = Path(out_dir)
    inputs = [Path(p) for p in inputs]
    outputs = _plan(inputs, out_dir, suffix)
    options_sha256 = fingerprint(task if options is None else options)
    with output_lock(out_dir):
        _clean_partials(out_dir, [o.name for o in outputs] + [MANIFEST_NAME])
        manifest = Manifest.load(out_dir)
        jobs = []
        for inp, out in zip(inputs, outputs):
            if manifest.is_complete(out.name, inp, options_sha256):
                continue
            manifest.forget(out.name)
            jobs.append((inp, out, None))
        if len(jobs) < len(inputs):
            log.info("%d of %d outputs already complete in %s", len(inputs) - len(jobs),
                     len(inputs), out_dir)
        run = _Run(manifest, options_sha256)
        if jobs and (serial or (scheduler is None and len(jobs) == 1)):
            _run_serial(jobs, task, run, desc)
        elif jobs:
            _run_dask(jobs, task, run, desc, scheduler, workers)
    _raise_failures(run.failures, len(inputs))
    return outputs
