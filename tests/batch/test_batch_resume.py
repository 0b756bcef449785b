"""Batch runs: one output per input, resumable, idempotent, one run per folder."""

from __future__ import annotations

import functools
import json
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

from ri2fl.batch import LOCK_NAME, MANIFEST_NAME, BatchError, output_path_for, run_batch
from ri2fl.batch._lock import output_lock
from ri2fl.errors import ConfigError, InputError, OutputError

TESTS = Path(__file__).resolve().parent


def processed(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def folder_contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` except the lock, by relative name."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def test_output_names_stay_inside_the_output_folder(tmp_path):
    out = tmp_path / "out"
    assert output_path_for("/data/cell.TCF", out, ".ome.zarr") == out / "cell.ome.zarr"
    assert output_path_for("a/b.ome.zarr/", out, ".csv") == out / "b.csv"
    assert output_path_for("../../etc/passwd.h5", out, ".ome.zarr").parent == out
    assert output_path_for("CELL.Tcf", out, ".ome.zarr") == out / "CELL.ome.zarr"
    for bad in ("/x.zarr", "../x", "", "a\\b"):
        with pytest.raises(ConfigError):
            output_path_for("cell.h5", out, bad)
    with pytest.raises(ConfigError):
        output_path_for("/data/..", out, ".zarr")


def test_batch_writes_one_output_per_input_and_skips_finished_ones(tmp_path):
    inputs = make_inputs(tmp_path / "in", 3)
    log = tmp_path / "log.txt"
    task = functools.partial(smooth_task, log=str(log))
    outs = run_batch(task, inputs, tmp_path / "out", ".npy", serial=True)
    assert [o.name for o in outs] == ["cell00.npy", "cell01.npy", "cell02.npy"]
    for inp, out in zip(inputs, outs):
        np.testing.assert_array_equal(np.load(out), np.cumsum(np.load(inp), axis=0) * 2)
    assert sorted(processed(log)) == ["cell00.npy", "cell01.npy", "cell02.npy"]

    run_batch(task, inputs, tmp_path / "out", ".npy", serial=True)
    assert len(processed(log)) == 3  # nothing redone

    os.utime(inputs[0])  # touched, same content: still skipped
    np.save(inputs[1], np.zeros((4, 8, 8), np.float32))  # new content: redone
    run_batch(task, inputs, tmp_path / "out", ".npy", serial=True)
    assert processed(log)[3:] == ["cell01.npy"]
    np.testing.assert_array_equal(np.load(outs[1]), 0)


def test_changed_options_redo_outputs(tmp_path):
    inputs = make_inputs(tmp_path / "in", 2)
    log = tmp_path / "log.txt"
    out = tmp_path / "out"
    run_batch(functools.partial(smooth_task, log=str(log)), inputs, out, ".npy", serial=True)
    run_batch(functools.partial(smooth_task, gain=3.0, log=str(log)), inputs, out, ".npy",
              serial=True)
    assert len(processed(log)) == 4
    np.testing.assert_allclose(np.load(out / "cell00.npy"),
                               np.cumsum(np.load(inputs[0]), axis=0) * 3)
    # explicit options: the same options skip, other ones redo
    task = functools.partial(smooth_task, log=str(log))
    run_batch(task, inputs, out, ".npy", serial=True, options={"gain": 2})
    run_batch(task, inputs, out, ".npy", serial=True, options={"gain": 2})
    assert len(processed(log)) == 6


def test_directory_outputs_replace_atomically_and_stale_staging_is_cleaned(tmp_path):
    zarr = pytest.importorskip("zarr")
    inputs = make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".cell00.zarr.0123abcd.ri2fl-staging"  # a killed run's, with its marker
    (stale / "cell00.zarr" / "c").mkdir(parents=True)
    (stale / ".ri2fl-staging").write_text("12345\n")
    lookalike = out / ".cell01.zarr.0123abcd.ri2fl-staging"  # no marker: not ri2fl's
    lookalike.mkdir()
    other = out / ".cell00.zarr.0123abcd.partial.zarr"
    other.write_text("not ours")
    run_batch(zarr_task, inputs, out, ".zarr", serial=True)
    assert not stale.exists() and lookalike.exists() and other.exists()
    np.testing.assert_array_equal(zarr.open_array(str(out / "cell00.zarr"))[:],
                                  np.load(inputs[0]) + 1)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        ["cell00.zarr", "cell01.zarr"]


def test_failed_input_does_not_stop_the_others(tmp_path, caplog):
    inputs = make_inputs(tmp_path / "in", 3)
    np.save(inputs[1], np.full((4, 8, 8), np.nan, np.float32))
    with pytest.raises(BatchError, match=r"1 of 3 inputs failed") as info:
        run_batch(smooth_task, inputs, tmp_path / "out", ".npy", serial=True)
    assert [(inp, str(exc)) for inp, exc in info.value.failures] == [
        (inputs[1], f"{inputs[1]}: input holds NaN")]
    assert [r.getMessage() for r in caplog.records] == [f"{inputs[1]}: input holds NaN"]
    assert (tmp_path / "out" / "cell00.npy").exists()
    assert (tmp_path / "out" / "cell02.npy").exists()
    assert not (tmp_path / "out" / "cell01.npy").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if "staging" in p.name]


def test_no_run_leaves_its_lock_behind(tmp_path):
    inputs = make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()  # the user's folder: it stays, the lock does not
    run_batch(smooth_task, inputs, out, ".npy", serial=True)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "cell00.npy", "cell01.npy"]
    np.save(inputs[1], np.full((4, 8, 8), np.nan, np.float32))
    with pytest.raises(BatchError):
        run_batch(smooth_task, inputs, out, ".npy", serial=True)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "cell00.npy", "cell01.npy"]
    with output_lock(out), pytest.raises(ConfigError, match="in use"):  # still one at a time
        run_batch(smooth_task, inputs[:1], out, ".npy", serial=True)
    assert not (out / LOCK_NAME).exists()


def test_bad_plans_are_refused_before_any_work(tmp_path):
    inputs = make_inputs(tmp_path / "a", 1) + make_inputs(tmp_path / "b", 1)
    with pytest.raises(ConfigError, match="would both write"):
        run_batch(smooth_task, inputs, tmp_path / "out", ".npy", serial=True)
    with pytest.raises(InputError, match="no such file"):
        run_batch(smooth_task, [tmp_path / "missing.npy"], tmp_path / "out", ".npy")
    with pytest.raises(OutputError, match="is the input"):
        run_batch(smooth_task, inputs[:1], tmp_path / "a", ".npy")
    with pytest.raises(ConfigError, match="at least one worker"):
        run_batch(smooth_task, inputs[:1], tmp_path / "out", ".npy", workers=0)


def test_hostile_manifest_cannot_reach_outside_the_folder(tmp_path):
    inputs = make_inputs(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.npy"
    victim.write_text("keep")
    hostile = {"format": "ri2fl-batch-manifest", "version": 1,
               "outputs": {"../victim.npy": {"options_sha256": "x"},
                           str(victim): {"options_sha256": "x"}}}
    (out / MANIFEST_NAME).write_text(json.dumps(hostile))
    run_batch(smooth_task, inputs, out, ".npy", serial=True)
    assert victim.read_text() == "keep"
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert list(manifest["outputs"]) == ["cell00.npy"]
    (out / MANIFEST_NAME).write_text('{"format": "ri2fl-batch-manifest", "outp')  # cut short
    run_batch(smooth_task, inputs, out, ".npy", serial=True)  # unreadable: redone, no crash
    assert (out / "cell00.npy").exists()
    assert list(json.loads((out / MANIFEST_NAME).read_text())["outputs"]) == ["cell00.npy"]


def test_symlinks_in_the_output_folder_are_neither_followed_nor_replaced(tmp_path):
    inputs = make_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "outside.npy"
    outside.write_text("keep")
    (out / "cell00.npy").symlink_to(outside)
    (out / ".cell00.npy.0123abcd.ri2fl-staging").symlink_to(tmp_path / "in")  # hostile
    with pytest.raises(BatchError, match=r"1 of 2 inputs failed") as info:
        run_batch(smooth_task, inputs, out, ".npy", serial=True)
    assert "cell00.npy: is a symbolic" in str(info.value.failures[0][1])
    assert outside.read_text() == "keep" and (tmp_path / "in" / "cell00.npy").exists()
    assert (out / "cell00.npy").is_symlink()
    np.testing.assert_array_equal(np.load(out / "cell01.npy"),
                                  np.cumsum(np.load(inputs[1]), axis=0) * 2)


def test_second_run_on_a_held_folder_is_refused(tmp_path):
    inputs = make_inputs(tmp_path / "in", 1)
    out = tmp_path / "out"
    with output_lock(out), pytest.raises(ConfigError, match="in use by another ri2fl run"):
        run_batch(smooth_task, inputs, out, ".npy", serial=True)
    run_batch(smooth_task, inputs, out, ".npy", serial=True)  # released afterwards


SCRIPT = textwrap.dedent("""
    import functools, sys
    sys.path.insert(0, {tests!r})
    from _batch_tasks import smooth_task
    from ri2fl.batch import run_batch
    task = functools.partial(smooth_task, delay=float(sys.argv[1]), gate=sys.argv[2],
                             log={log!r})
    run_batch(task, sys.argv[3:], {out!r}, ".npy", serial={serial}, options={{"gain": 2.0}})
""")


def start(tmp_path: Path, out: Path, inputs, delay: float = 0.0, serial: bool = True):
    script = tmp_path / f"run_{out.name}.py"
    log = str(tmp_path / f"log_{out.name}.txt")
    script.write_text(SCRIPT.format(tests=str(TESTS), out=str(out), serial=serial, log=log))
    gate = str(tmp_path / "gate")
    return subprocess.Popen([sys.executable, str(script), str(delay), gate,
                             *map(str, inputs)], stderr=subprocess.PIPE, start_new_session=True)


def wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def half_written(out: Path) -> bool:
    """A staged output holding its header but not its data yet (mid-task)."""
    try:
        return any(0 < p.stat().st_size < 256 for p in out.glob(".*.ri2fl-staging/*.npy"))
    except OSError:  # a staging folder went away while listed
        return False


def n_done(out: Path) -> int:
    try:
        return len(json.loads((out / MANIFEST_NAME).read_text())["outputs"])
    except (OSError, ValueError):
        return 0


def test_sigkill_midway_then_rerun_ends_identical_to_an_uninterrupted_run(tmp_path):
    inputs = make_inputs(tmp_path / "in", 5)
    ref = tmp_path / "ref"
    run_batch(smooth_task, inputs, ref, ".npy", serial=True, options={"gain": 2.0})

    out = tmp_path / "out"
    proc = start(tmp_path, out, inputs, delay=0.05)  # stops half-way through the 3rd output
    wait_for(lambda: n_done(out) == 2 and half_written(out))
    # while it runs, a second run on the same folder is refused
    second = start(tmp_path, out, inputs)
    _, err = second.communicate(timeout=180)
    assert second.returncode != 0 and b"in use by another ri2fl run" in err
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert half_written(out) and n_done(out) == 2  # a half-written output was left behind

    (tmp_path / "gate").touch()
    rerun = start(tmp_path, out, inputs)  # the same command; the kernel freed the lock
    _, err = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, err.decode()
    assert folder_contents(out) == folder_contents(ref)
    # finished outputs were skipped: 3 started by the killed run, 3 redone or new
    assert len(processed(tmp_path / "log_out.txt")) == 3 + 3


def test_dask_cluster_gives_the_same_outputs_as_serial(tmp_path):
    inputs = make_inputs(tmp_path / "in", 4)
    log = tmp_path / "log.txt"
    task = functools.partial(smooth_task, log=str(log))
    run_batch(task, inputs, tmp_path / "serial", ".npy", serial=True)
    run_batch(task, inputs, tmp_path / "dask", ".npy", workers=2)
    assert folder_contents(tmp_path / "dask") == folder_contents(tmp_path / "serial")
    pids = {line.split()[1] for line in log.read_text().splitlines()[4:]}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # ran on two worker processes


def test_existing_scheduler_is_used(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    inputs = make_inputs(tmp_path / "in", 3)
    run_batch(smooth_task, inputs, tmp_path / "serial", ".npy", serial=True)
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as c:
        run_batch(smooth_task, inputs, tmp_path / "dask", ".npy", scheduler=c.scheduler_address)
    assert folder_contents(tmp_path / "dask") == folder_contents(tmp_path / "serial")
    monkeypatch.setattr("ri2fl.batch.SCHEDULER_TIMEOUT_S", 1.0)
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        run_batch(smooth_task, inputs, tmp_path / "x", ".npy", scheduler="tcp://127.0.0.1:9")


CTRL_C_SCRIPT = textwrap.dedent("""
    import functools, sys
    sys.path.insert(0, {tests!r})
    from _batch_tasks import smooth_task
    from ri2fl.batch import run_batch
    if __name__ == "__main__":  # Dask's worker processes import this file again
        task = functools.partial(smooth_task, delay=0.05, gate={gate!r})
        try:
            run_batch(task, sys.argv[1:], {out!r}, ".npy", workers=2)
        except KeyboardInterrupt:
            sys.exit(130)  # as the CLI does: one line, no traceback
""")


def test_ctrl_c_on_a_dask_run_stops_quietly_and_leaves_only_finished_outputs(tmp_path):
    inputs = make_inputs(tmp_path / "in", 6)
    out = tmp_path / "out"
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT.format(tests=str(TESTS), out=str(out),
                                           gate=str(tmp_path / "gate")))
    # a terminal's Ctrl-C: SIGINT to the whole process group, Dask's workers included
    proc = subprocess.Popen([sys.executable, str(script), *map(str, inputs)],
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: half_written(out))
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err and b"leaked" not in err, err.decode()
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")
                 and p.name != MANIFEST_NAME]
    assert leftovers == []  # no lock, no staging folder
    assert all(p.name.endswith(".npy") for p in out.iterdir() if p.name != MANIFEST_NAME)


PROBE_SCRIPT = textwrap.dedent("""
    import signal, subprocess, sys
    from ri2fl.batch import _children_ignore_sigint
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    probe = [sys.executable, "-c",
             "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"]
    print(subprocess.run(probe, capture_output=True, text=True).stdout.strip())
    with _children_ignore_sigint():
        print(subprocess.run(probe, capture_output=True, text=True).stdout.strip())
    print(signal.getsignal(signal.SIGINT))
""")


def test_dask_worker_processes_leave_ctrl_c_to_the_run_that_started_them():
    # Ctrl-C reaches the whole process group: workers that took it would each print a
    # KeyboardInterrupt traceback; the run itself stops them and cleans up instead
    lines = subprocess.run([sys.executable, "-c", PROBE_SCRIPT], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert lines[0] == "False"  # an ordinary child takes Ctrl-C
    assert lines[1] == "True"  # the cluster's processes ignore it
    assert lines[2].endswith("default_int_handler>")  # and the run's own handler is back
