"""Running one task over many inputs: one output per input in an output folder.

The CLIs of ``predict``, ``segment`` and ``profile`` call :func:`run_batch` with a function
that processes one input into one output path. This module decides where it runs (a Dask
cluster, or in-process with ``serial=True``), skips outputs that are already complete, and
writes each output atomically. :func:`single_output_path` decides whether ``-o`` names one
output (``-o cell.ome.zarr`` with one input: written by :func:`run_single`, exactly there)
or a folder of outputs.

A run can be killed at any moment (even by SIGKILL) and started again with the same
command: finished outputs are skipped, half-written ones (in ri2fl's staging folders) are
removed and redone, and the folder ends as an uninterrupted run would have left it. Only one
run at a time may write into a folder. Nothing ri2fl did not write is ever replaced or
removed: an output name taken by a user's file or folder fails that input. See
``docs/scaling.md``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._atomic import (
    STAGING_SUFFIX,
    atomic_path,
    check_not_input,
    clean_stale_staging,
    is_own_output,
)
from ..errors import ConfigError, InputError, OutputError, Ri2flError
from ..progress import progress
from ._fingerprint import check_regular_input, fingerprint, input_digest, input_signature
from ._lock import LOCK_NAME, output_lock
from ._manifest import MANIFEST_NAME, Manifest

__all__ = [
    "LOCK_NAME",
    "MANIFEST_NAME",
    "ZARR_SUFFIXES",
    "BatchError",
    "failure_line",
    "output_path_for",
    "run_batch",
    "run_single",
    "single_output_path",
]

log = logging.getLogger(__name__)

#: Seconds to wait for an existing Dask scheduler to answer.
SCHEDULER_TIMEOUT_S = 30.0

_INPUT_EXTENSIONS = (".ome.zarr", ".ome.tiff", ".ome.tif", ".tiff", ".tif", ".zarr", ".h5",
                     ".hdf5", ".tcf", ".npy")
#: Names of one OME-Zarr output (``-o cell.ome.zarr``), not of a folder of outputs.
ZARR_SUFFIXES = (".ome.zarr", ".zarr")
#: Names of one output file: refused where a command writes none of them.
_FILE_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".h5", ".hdf5", ".tcf", ".npy",
                  ".npz", ".parquet", ".csv", ".html")


def single_output_path(inputs: Sequence[str | Path], output: str | Path,
                       suffixes: Sequence[str] = ZARR_SUFFIXES) -> Path | None:
    """The one output that ``output`` names, or None when it names a folder of outputs.

    ``output`` names one output when its name ends with one of ``suffixes`` (any case):
    with one input, that output is written exactly there (:func:`run_single`). Any other
    name is a folder receiving one output per input (:func:`run_batch`).

    Parameters
    ----------
    inputs : sequence of path
        The inputs of the run.
    output : path
        What the user gave as the output (``-o``).
    suffixes : sequence of str
        The suffixes of the outputs the command writes, e.g. :data:`ZARR_SUFFIXES`.

    Raises
    ------
    ConfigError
        If ``output`` names one output but there are several inputs (a folder named
        ``x.ome.zarr`` holding stores would confuse every OME-Zarr reader), or it names a
        file of a kind the command does not write (``-o x.tif`` for OME-Zarr outputs).

    Examples
    --------
    >>> single_output_path(["cell.TCF"], "pred.ome.zarr").name
    'pred.ome.zarr'
    >>> single_output_path(["a.TCF", "b.TCF"], "predictions") is None
    True
    """
    out, name = Path(output), Path(output).name.lower()
    own = next((s for s in suffixes if name.endswith(s.lower())), None)
    if own is not None:
        if len(inputs) != 1:
            raise ConfigError(f"names one {own} output, but {len(inputs)} inputs were given",
                              output, "give a folder for many inputs, e.g. -o predictions/")
        return out
    other = next((s for s in _FILE_SUFFIXES if name.endswith(s)), None)
    if other is not None:
        raise ConfigError(f"cannot write {other} here, only {' or '.join(suffixes)}", output,
                          f"name the output <name>{suffixes[0]}, or give a folder")
    return None


def run_single(task: Callable[[Path, Path], None], input_path: str | Path,
               output_path: str | Path, *, overwrite: bool = False) -> Path:
    """Run ``task(input_path, tmp_output_path)`` for one input into exactly ``output_path``.

    The output is written atomically (renamed into place only when ``task`` returns), and
    replaced only when ``overwrite`` is true and ri2fl wrote it
    (:func:`ri2fl._atomic.atomic_path`). Nothing is skipped: no lock or manifest is kept
    next to a single named output.

    Raises
    ------
    InputError
        If the input is missing or not a regular file (a FIFO, a device).
    OutputError
        If ``output_path`` is, holds or lies inside the input, or may not be written or
        replaced.
    """
    inp, out = Path(input_path), Path(output_path)
    if not inp.exists():
        raise InputError("no such file or folder", inp, "check the input path")
    check_regular_input(inp)
    check_not_input(out, [inp])
    with atomic_path(out, overwrite=overwrite) as tmp:
        task(inp, tmp)
    return out


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
    """Output paths, after checking that inputs exist, are regular files or folders of them,
    and no two share an output."""
    outputs: list[Path] = []
    seen: dict[str, Path] = {}
    for inp in inputs:
        inp = Path(inp)
        if not inp.exists():
            raise InputError("no such file or folder", inp, "check the input paths")
        check_regular_input(inp)
        out = output_path_for(inp, out_dir, suffix)
        if out.name in seen:
            raise ConfigError(f"inputs {seen[out.name]} and {inp} would both write {out}",
                              out_dir, "rename one of them or run them into separate folders")
        seen[out.name] = inp
        outputs.append(out)
    _check_not_inputs(inputs, outputs, out_dir)
    return outputs


def _check_not_inputs(inputs: Sequence[Path], outputs: Sequence[Path], out_dir: Path) -> None:
    """Refuse a folder that is or lies inside an input, and outputs that are or hold one.

    Inputs inside the folder next to their outputs (``-o .``) are fine. Each output is only
    compared with the inputs under its own name, so that many inputs stay fast.
    """
    real_dir = os.path.realpath(out_dir)
    around, by_name = [], {}
    for inp in inputs:
        real = os.path.realpath(inp)
        common = os.path.commonpath([real, real_dir])
        if common == real:  # the folder's lock, manifest and outputs would go into the input
            around.append(inp)
        elif common == real_dir:
            by_name.setdefault(Path(os.path.relpath(real, real_dir)).parts[0], []).append(inp)
    check_not_input(out_dir, around)
    for out in outputs:
        check_not_input(out, by_name.get(out.name, ()))


def _clean_staging(out_dir: Path, names: Sequence[str]) -> None:
    """Remove the staging folders that killed or interrupted runs left for ``names``.

    Only ri2fl's own, unlocked staging folders go (:func:`~ri2fl._atomic.clean_stale_staging`);
    one listing of the folder first keeps this fast for many names.
    """
    try:
        staged = [e.name[1:] for e in os.scandir(out_dir) if e.name.endswith(STAGING_SUFFIX)]
    except OSError:
        return
    for name in names:
        if any(s.startswith(name[:64]) for s in staged):
            clean_stale_staging(out_dir, name)


def _foreign(out: Path) -> OutputError | None:
    """Why an existing output must not be replaced, if it must not."""
    if not os.path.lexists(out) or is_own_output(out):
        return None
    what = ("is a symbolic link" if out.is_symlink() else "exists and was not written by "
            "ri2fl")
    return OutputError(f"{what}; ri2fl never replaces it", out,
                       "move it away, or choose another output folder with -o")


def _execute(task: Callable[[Path, Path], None], input_path: str, output_path: str,
             digest: str | None) -> tuple[str, str]:
    """Run ``task`` for one input into a temporary path; rename it into place when done.

    Runs on a Dask worker or in-process; returns the input's (signature, digest) as read
    before the task, for the manifest.
    """
    inp = Path(input_path)
    signature = input_signature(inp)
    digest = digest or input_digest(inp)
    with atomic_path(output_path, overwrite=True) as tmp:  # outdated outputs are redone
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
        self.failures.append((inp, exc))  # reported once, at the end


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


@contextlib.contextmanager
def _quiet_dask() -> Iterator[int]:
    """Keep distributed's chatter off the terminal unless ``--debug``: its INFO lines, the
    workers' task tracebacks ("Compute Failed"), the nannies' errors while a Ctrl-C stops them
    and the warning that another run holds the dashboard port. Failures are reported once,
    by :func:`run_batch`.

    Yields the log level for the local cluster's workers.
    """
    import distributed  # noqa: F401 - sets its loggers' levels when first imported

    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield logging.WARNING
        return
    loggers = [logging.getLogger(name) for name in ("distributed", "dask")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"Port \d+ is already in use", UserWarning)
            yield logging.CRITICAL
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Start processes that ignore SIGINT: a terminal's Ctrl-C reaches the whole process
    group, and Dask's nannies and workers would each die with a KeyboardInterrupt traceback
    (and leak their semaphores) instead of being closed by this process. A SIGINT ignored
    at start-up stays ignored in a Python child (no KeyboardInterrupt handler is installed),
    so only the parent handles it.

    The resource tracker these processes start is told not to print the semaphores of
    workers stopped mid-task: it removes them itself, and the line would only alarm.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    warnings_env = os.environ.get("PYTHONWARNINGS")
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    os.environ["PYTHONWARNINGS"] = f"{warnings_env},{quiet}" if warnings_env else quiet
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if warnings_env is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = warnings_env


def _client(scheduler: str | None, workers: int | None, n_jobs: int, worker_log_level: int):
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
                          for key, value in WORKER_MALLOC_ENV.items()}), \
            _children_ignore_sigint():
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=worker_log_level)
    return Client(cluster), cluster


def _run_dask(jobs: list[tuple[Path, Path, str | None]], task: Callable, run: _Run, desc: str,
              scheduler: str | None, workers: int | None) -> None:
    with _quiet_dask() as worker_log_level:
        client, cluster = _client(scheduler, workers, len(jobs), worker_log_level)
        futures = {}
        try:
            futures = {client.submit(_execute, task, str(inp), str(out), digest, pure=False,
                                     key=f"ri2fl-{out.name}-{os.getpid()}-{i}"): (inp, out)
                       for i, (inp, out, digest) in enumerate(jobs)}
            _collect(futures, run, desc)
        except BaseException:  # Ctrl-C, SIGTERM: stop the work that has not finished
            with contextlib.suppress(Exception):
                client.cancel(list(futures))
            raise
        finally:
            client.close()
            if cluster is not None:
                cluster.close()  # its workers are gone: their staging can be cleaned


def _collect(futures: dict, run: _Run, desc: str) -> None:
    from distributed import as_completed

    for fut in progress(as_completed(futures), desc=desc, total=len(futures)):
        inp, out = futures[fut]
        try:
            result = fut.result()
        except Exception as exc:
            run.failed(inp, exc)
        else:
            run.done(inp, out, result)


def failure_line(inp: Path, exc: BaseException) -> str:
    """One line for a failed input: ``<input>: <what went wrong>``, the input named once."""
    if isinstance(exc, Ri2flError):
        detail = exc.one_line()
        if exc.where == str(inp):  # the error already names the input first
            return detail
    else:
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return f"{inp}: {detail}"


class BatchError(InputError):
    """Some inputs of a batch failed (each logged once, one line, as it was collected); the
    other outputs are complete. ``failures`` holds (input, exception) pairs."""

    def __init__(self, failures: list[tuple[Path, BaseException]], n_inputs: int,
                 out_dir: Path):
        self.failures = failures
        super().__init__(f"{len(failures)} of {n_inputs} inputs failed (each named above)",
                         out_dir, "the other outputs are complete; fix or remove the failing "
                                  "inputs and run the same command again")


def _raise_failures(failures: list[tuple[Path, BaseException]], n_inputs: int,
                    out_dir: Path) -> None:
    if not failures:
        return
    if n_inputs == 1:
        raise failures[0][1]
    for inp, exc in failures:
        log.error("%s", failure_line(inp, exc))
    raise BatchError(failures, n_inputs, out_dir)


def run_batch(task: Callable[[Path, Path], None], inputs: Sequence[str | Path],
              out_dir: str | Path, suffix: str, *, scheduler: str | None = None,
              serial: bool = False, workers: int | None = None, desc: str = "inputs",
              options: Mapping[str, Any] | None = None) -> list[Path]:
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
    options : mapping, optional
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
        If an input is missing or not a regular file (a FIFO, a device); for a single input
        its own error; :class:`BatchError` when some of many inputs failed (the others are
        still completed; each failure is logged once, as one line naming its input).
    OutputError
        If the folder cannot be used (a file or link, read-only, full), is inside an input,
        or holds a non-regular lock or manifest; or for a single input whose output name is
        taken by something ri2fl did not write.
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"needs at least one worker, got {workers}", "--workers")
    out_dir = Path(out_dir)
    inputs = [Path(p) for p in inputs]
    outputs = _plan(inputs, out_dir, suffix)
    options_sha256 = fingerprint(task if options is None else options)
    names = [o.name for o in outputs] + [MANIFEST_NAME]
    with output_lock(out_dir):
        _clean_staging(out_dir, names)
        run = _Run(Manifest.load(out_dir), options_sha256)
        jobs = _jobs(inputs, outputs, run)
        try:
            if jobs and (serial or (scheduler is None and len(jobs) == 1)):
                _run_serial(jobs, task, run, desc)
            elif jobs:
                _run_dask(jobs, task, run, desc, scheduler, workers)
        except BaseException:
            _clean_staging(out_dir, names)  # what the stopped workers were writing
            raise
    _raise_failures(run.failures, len(inputs), out_dir)
    return outputs


def _jobs(inputs: Sequence[Path], outputs: Sequence[Path],
          run: _Run) -> list[tuple[Path, Path, str | None]]:
    """The inputs to (re)do; an output name taken by something not ri2fl's fails its input."""
    jobs = []
    for inp, out in zip(inputs, outputs):
        if run.manifest.is_complete(out.name, inp, run.options_sha256):
            continue
        run.manifest.forget(out.name)
        refusal = _foreign(out)
        if refusal is not None:
            run.failed(inp, refusal)
        else:
            jobs.append((inp, out, None))
    if len(jobs) + len(run.failures) < len(inputs):
        log.info("%d of %d outputs already complete in %s",
                 len(inputs) - len(jobs) - len(run.failures), len(inputs), outputs[0].parent)
    return jobs
