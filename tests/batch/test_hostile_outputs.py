"""Batch runs never lose a user's data, hang, or leave litter (issue #28).

Hostile or unlucky output folders and inputs (links, FIFOs, devices, a user's folder under an
output's name, an output inside its input) end in one error line, exit status 2, and leave
everything that is not ri2fl's exactly as it was.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _batch_tasks import make_inputs, smooth_task, zarr_task

from ri2fl.batch import LOCK_NAME, MANIFEST_NAME, BatchError, run_batch
from ri2fl.batch._fingerprint import input_digest, input_signature
from ri2fl.cli.main import Terminated, main, signals_interrupt
from ri2fl.errors import InputError, OutputError

fcntl = pytest.importorskip("fcntl")  # POSIX: FIFOs, flock, signals
TESTS = Path(__file__).resolve().parent
pytestmark = pytest.mark.timeout(60)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder`` (links by target), to compare before and after."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = f"-> {os.readlink(p)}"
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel] = "dir" if p.is_dir() else "special"
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny predict model (never run by the refusals below; its digest is still taken)."""
    torch = pytest.importorskip("torch")
    models = pytest.importorskip("ri2fl.models")
    torch.manual_seed(0)
    config = {"model": {"features": 4, "depth": 2}, "targets": ["membrane"],
              "patch_size": [16, 32, 32]}
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return models.save_checkpoint(path, models.build(config), config)


@pytest.fixture
def cell(tmp_path) -> Path:
    path = tmp_path / "cell.npy"
    np.save(path, (1.337 + 0.01 * np.random.default_rng(0).random((8, 16, 16))).astype("f4"))
    return path


def predict(capsys, *args: str | Path, model: Path) -> tuple[int, str]:
    rc = main(["predict", *map(str, args), "--model", str(model), "--serial", "--device",
               "cpu", "--voxel-size", "0.2", "0.15", "0.15"])
    return rc, capsys.readouterr().err


# --------------------------------------------------------------------------- user's outputs

def test_user_folder_under_an_output_name_is_left_intact(tmp_path, cell, checkpoint, capsys):
    others = tmp_path / "others"
    (others / "cell.ome.zarr").mkdir(parents=True)
    (others / "cell.ome.zarr" / "important.txt").write_text("years of work")
    before = snapshot(others)
    rc, err = predict(capsys, cell, "-o", others, model=checkpoint)
    assert rc == 2 and err.count("\n") == 1
    assert "cell.ome.zarr: exists and was not written by ri2fl" in err
    assert {k: v for k, v in snapshot(others).items() if k != LOCK_NAME} == before


def test_a_user_folder_fails_only_its_own_input(tmp_path):
    inputs = make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    (out / "cell00.zarr").mkdir(parents=True)
    (out / "cell00.zarr" / "important.txt").write_text("keep")
    with pytest.raises(BatchError, match=r"1 of 2 inputs failed") as info:
        run_batch(zarr_task, inputs, out, ".zarr", serial=True)
    assert "not written by ri2fl" in str(info.value.failures[0][1])
    assert (out / "cell00.zarr" / "important.txt").read_text() == "keep"
    assert (out / "cell01.zarr" / "zarr.json").exists()


def test_look_alike_user_files_survive_and_own_stale_outputs_are_redone(tmp_path):
    inputs = make_inputs(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    lookalike = out / ".cell00.ome.zarr.1234abcd.partial"
    lookalike.write_text("mine")
    run_batch(zarr_task, inputs, out, ".ome.zarr", serial=True)
    run_batch(functools.partial(zarr_task), inputs, out, ".ome.zarr", serial=True,
              options={"other": 1})  # stale: redone over ri2fl's own output
    assert lookalike.read_text() == "mine"
    assert json.loads((out / MANIFEST_NAME).read_text())["outputs"]["cell00.ome.zarr"]


def test_stale_staging_of_a_killed_run_is_removed_and_only_that(tmp_path):
    inputs = make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".cell00.npy.k1ll3d00.ri2fl-staging"  # a killed predict: output + scratch
    (stale / "ri2fl-predict-x7" / "scratch.zarr").mkdir(parents=True)
    (stale / "cell00.npy").write_bytes(b"half")
    (stale / ".ri2fl-staging").write_text("99999\n")
    live = out / ".cell01.npy.l1ve0000.ri2fl-staging"  # another process is still writing it
    live.mkdir()
    (live / ".ri2fl-staging").write_text(f"{os.getpid()}\n")
    unmarked = out / ".cell00.npy.n0mark00.ri2fl-staging"  # a look-alike without marker
    unmarked.mkdir()
    fd = os.open(live / ".ri2fl-staging", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        run_batch(smooth_task, inputs, out, ".npy", serial=True)
        assert not stale.exists() and live.exists() and unmarked.exists()
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- lock, manifest

def test_planted_lock_link_is_refused_and_its_target_kept(tmp_path, cell, checkpoint, capsys):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / LOCK_NAME).symlink_to("../victim.txt")
    rc, err = predict(capsys, cell, "-o", out, model=checkpoint)
    assert rc == 2 and "symbolic link" in err and LOCK_NAME in err
    assert victim.read_text() == "precious"
    (out / LOCK_NAME).unlink()
    (out / LOCK_NAME).symlink_to("../created-through-link")  # dangling: nothing is created
    rc, _ = predict(capsys, cell, "-o", out, model=checkpoint)
    assert rc == 2 and not (tmp_path / "created-through-link").exists()


@pytest.mark.parametrize("name", [LOCK_NAME, MANIFEST_NAME])
def test_fifo_lock_or_manifest_is_refused_without_hanging(tmp_path, name):
    inputs = make_inputs(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / name)
    with pytest.raises(OutputError, match="not a regular file"):
        run_batch(smooth_task, inputs, out, ".npy", serial=True)
    assert not (out / "cell00.npy").exists()


def test_manifest_link_to_dev_zero_is_refused_without_reading(tmp_path):
    inputs = make_inputs(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).symlink_to("/dev/zero")
    with pytest.raises(OutputError, match="symbolic link"):
        run_batch(smooth_task, inputs, out, ".npy", serial=True)


def test_manifest_of_any_json_shape_is_no_internal_error(tmp_path, caplog):
    inputs = make_inputs(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).write_text("[]")  # not ri2fl's: refused, kept
    with pytest.raises(OutputError, match="not written by ri2fl"):
        run_batch(smooth_task, inputs, out, ".npy", serial=True)
    assert (out / MANIFEST_NAME).read_text() == "[]"
    for text in ('["ri2fl"]', '"ri2fl"', '{"format": "ri2fl-batch-manifest", "outputs": []}'):
        (out / MANIFEST_NAME).write_text(text)  # ri2fl's, but damaged: redone with a warning
        with caplog.at_level(logging.WARNING):
            run_batch(smooth_task, inputs, out, ".npy", serial=True)
        assert "not a ri2fl manifest" in caplog.text
        assert list(json.loads((out / MANIFEST_NAME).read_text())["outputs"]) == ["cell00.npy"]


# --------------------------------------------------------------------------- inputs

@pytest.mark.parametrize("command", ["predict", "segment"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link"])
def test_fifo_or_device_input_is_refused_at_once(tmp_path, command, kind, capsys):
    inp = tmp_path / "cell.h5"
    if kind == "fifo":
        os.mkfifo(inp)
    else:
        inp.symlink_to("/dev/zero")
    start = time.monotonic()
    rc = main([command, str(inp), "-o", str(tmp_path / "out"), "--serial"])
    err = capsys.readouterr().err
    assert rc == 2 and ("a named pipe (FIFO)" if kind == "fifo" else "a character device") in err
    assert time.monotonic() - start < 30
    assert not (tmp_path / "out").exists()


def test_folder_input_holding_a_fifo_or_device_link_is_refused(tmp_path):
    store = tmp_path / "cell.ome.zarr"
    (store / "0").mkdir(parents=True)
    (store / "zarr.json").write_text("{}")
    assert input_digest(store) and input_signature(store).startswith("dir:")
    os.mkfifo(store / "0" / "c")
    with pytest.raises(InputError, match=r"0/c: a named pipe \(FIFO\), not a regular file"):
        input_digest(store)
    with pytest.raises(InputError, match="named pipe"):
        input_signature(store)
    os.unlink(store / "0" / "c")
    (store / "0" / "c").symlink_to("/dev/zero")
    with pytest.raises(InputError, match="a character device"):
        run_batch(zarr_task, [store], tmp_path / "out", ".zarr", serial=True)


# --------------------------------------------------------------------------- output folder

def test_output_folder_inside_its_input_is_refused(tmp_path, checkpoint, capsys):
    store = tmp_path / "X.ome.zarr"
    (store / "0").mkdir(parents=True)
    (store / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    before = snapshot(store)
    for out in (store, store / "sub"):
        rc, err = predict(capsys, store, "-o", out, model=checkpoint)
        assert rc == 2 and "input" in err
        assert snapshot(store) == before


@pytest.mark.parametrize("kind", ["file", "link"])
def test_output_folder_that_is_a_file_or_link_is_refused(tmp_path, cell, checkpoint, kind,
                                                         capsys):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("notes")
    else:
        (tmp_path / "real").mkdir()
        out.symlink_to(tmp_path / "real")
    rc, err = predict(capsys, cell, "-o", out, model=checkpoint)
    assert rc == 2 and err.count("\n") == 1
    assert ("not a folder" if kind == "file" else "symbolic link") in err
    assert out.read_text() == "notes" if kind == "file" else not any((tmp_path / "real").iterdir())


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_unwritable_output_folder_is_a_user_error(tmp_path, cell, checkpoint, capsys,
                                                  monkeypatch, code):
    real_mkdir = os.mkdir

    def refuse(path, *args, **kwargs):  # root writes anywhere: fake the file system's answer
        if Path(path).name == "out":
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refuse)
    rc, err = predict(capsys, cell, "-o", tmp_path / "out", model=checkpoint)
    assert rc == 2 and f"cannot write to the output folder: {os.strerror(code)}" in err


def test_failed_run_into_a_new_folder_leaves_nothing(tmp_path, checkpoint, capsys):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an array")
    rc, _ = predict(capsys, bad, "-o", tmp_path / "new" / "deeper", model=checkpoint)
    assert rc == 2 and not (tmp_path / "new").exists()
    mine = tmp_path / "mine"  # a folder the user made stays
    mine.mkdir()
    rc, _ = predict(capsys, bad, "-o", mine, model=checkpoint)
    assert rc == 2 and mine.is_dir()


# --------------------------------------------------------------------------- signals, logs

def test_sigterm_becomes_an_exception_that_cleans_staging(tmp_path):
    from ri2fl._atomic import atomic_path

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), signals_interrupt(), atomic_path(tmp_path / "x.npy") as tmp:
        tmp.write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is previous
    assert not list(tmp_path.iterdir())


SCRIPT = textwrap.dedent("""
    import functools, sys
    sys.path.insert(0, {tests!r})
    from _batch_tasks import smooth_task
    from ri2fl.batch import run_batch
    if __name__ == "__main__":
        task = functools.partial(smooth_task, gate=sys.argv[1], open_inputs=0)
        run_batch(task, sys.argv[3:], sys.argv[2], ".npy", workers=2)
""")


def test_interrupted_dask_run_leaves_no_staging(tmp_path):
    inputs = make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=str(TESTS)))
    # SIGINT as a terminal delivers it, even where this test runs with it ignored (a
    # background job of a non-interactive shell), which a child would inherit
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "gate"), str(out),
                             *map(str, inputs)], stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        end = time.monotonic() + 45
        while len(list(out.glob(".*.ri2fl-staging/cell*.npy"))) < 2:
            assert time.monotonic() < end and proc.poll() is None, "workers never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=45)
    finally:
        proc.kill()
    assert proc.returncode != 0 and b"Traceback" in err  # the plain script shows it
    assert b" - distributed." not in err and b"distributed.nanny" not in err  # no log lines
    assert list(out.iterdir()) == []  # no staging, scratch or lock; the user's folder stays


def test_distributed_logs_nothing_but_critical_while_quiet():
    """The nannies' ERROR tracebacks while a Ctrl-C stops them stay off the terminal."""
    from ri2fl.batch import _quiet_dask

    with _quiet_dask() as worker_level:
        assert worker_level == logging.CRITICAL
        for name in ("distributed", "distributed.nanny", "distributed.worker", "dask"):
            assert not logging.getLogger(name).isEnabledFor(logging.ERROR), name
    assert logging.getLogger("distributed.nanny").isEnabledFor(logging.ERROR)


def test_dask_failures_are_reported_once_without_chatter(tmp_path, capfd, caplog):
    inputs = make_inputs(tmp_path / "in", 3)
    for bad in inputs[1:]:
        np.save(bad, np.full((4, 8, 8), np.nan, np.float32))
    with pytest.raises(BatchError, match=r"2 of 3 inputs failed") as info:
        run_batch(smooth_task, inputs, tmp_path / "out", ".npy", workers=2)
    err = capfd.readouterr().err
    assert "Compute Failed" not in err and "distributed" not in err, err
    assert not [r for r in caplog.records if r.name.startswith("distributed")]
    reported = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    # each input once, on one line that names it once; the summary names none of them
    assert sorted(reported) == [f"{bad}: input holds NaN" for bad in inputs[1:]]
    assert not any(str(bad) in str(info.value) for bad in inputs[1:])
