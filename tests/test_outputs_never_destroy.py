"""Issue #28, output side: ri2fl never replaces, deletes or writes through what it did not
write, cleans up only its own staging, and reports filesystem problems as one line."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from ri2fl._atomic import (
    OUTPUT_MARKER,
    STAGING_MARKER,
    atomic_path,
    check_not_input,
    check_output,
    clean_stale_staging,
    is_own_output,
)
from ri2fl.cli.main import main
from ri2fl.errors import OutputError

pytestmark = pytest.mark.timeout(60)

VOXEL = ["--voxel-size", "0.2", "0.15", "0.15"]


def _ri(path: Path, value: float = 1.35) -> Path:
    rng = np.random.default_rng(0)
    np.save(path, (value + 0.01 * rng.random((8, 16, 16))).astype(np.float32))
    return path


def _convert(capsys, *args: str) -> tuple[int, str]:
    rc = main(["convert", *map(str, args), *VOXEL])
    return rc, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "internal error" not in lines[0]
    return lines[0]


def _zarr_name(store: Path) -> str:
    attrs = json.loads((store / "zarr.json").read_text())["attributes"]
    return attrs["ome"]["multiscales"][0]["name"]


def _mean(store: Path) -> float:
    import zarr

    return float(np.asarray(zarr.open_array(store / "0", mode="r")).mean())


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "staging" in p.name or "partial" in p.name)


# --------------------------------------------------------------------------- the sweep

def test_convert_into_a_users_folder_leaves_it_and_its_files(tmp_path, capsys):
    folder = tmp_path / "userdir.ome.zarr"
    folder.mkdir()
    (folder / "thesis.docx").write_bytes(b"four years of work")
    rc, err = _convert(capsys, _ri(tmp_path / "x.npy"), folder)
    assert rc == 2
    assert "not written by ri2fl" in _one_error_line(err)
    assert (folder / "thesis.docx").read_bytes() == b"four years of work"
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.docx"]


def test_a_file_output_never_replaces_a_folder(tmp_path, capsys):
    folder = tmp_path / "userdir.ome.tif"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    rc, err = _convert(capsys, _ri(tmp_path / "x.npy"), folder, "--overwrite")
    assert rc == 2
    assert "is a folder" in _one_error_line(err)
    assert folder.is_dir() and (folder / "notes.txt").read_text() == "mine"


def test_an_output_holding_the_input_is_refused(tmp_path, capsys):
    folder = tmp_path / "userdir.ome.zarr"
    folder.mkdir()
    cell = _ri(folder / "cell.npy")
    (folder / "notes.txt").write_text("mine")
    before = cell.read_bytes()
    rc, err = _convert(capsys, cell, folder, "--overwrite")
    assert rc == 2
    assert "holds the input" in _one_error_line(err)
    assert cell.read_bytes() == before and (folder / "notes.txt").read_text() == "mine"


def test_an_output_inside_the_input_is_refused(tmp_path, capsys):
    rc, _ = _convert(capsys, _ri(tmp_path / "x.npy"), tmp_path / "in.ome.zarr")
    assert rc == 0
    rc, err = _convert(capsys, tmp_path / "in.ome.zarr", tmp_path / "in.ome.zarr" / "0.ome.tif")
    assert rc == 2
    assert "inside the input" in _one_error_line(err)


@pytest.mark.parametrize("target_kind", ["user file", "own output"])
def test_a_symlink_is_never_written_through(tmp_path, capsys, target_kind):
    src = _ri(tmp_path / "x.npy")
    target = tmp_path / "target.ome.tif"
    if target_kind == "user file":
        target.write_bytes(b"user data")
    else:
        assert _convert(capsys, src, target)[0] == 0
    before = target.read_bytes()
    link = tmp_path / "link.ome.tif"
    link.symlink_to(target)
    rc, err = _convert(capsys, src, link, "--overwrite")
    assert rc == 2
    assert "symbolic link" in _one_error_line(err)
    assert link.is_symlink() and target.read_bytes() == before


def test_a_users_file_named_like_an_old_partial_survives(tmp_path, capsys):
    user = tmp_path / ".out.ome.zarr.1234abcd.partial"
    user.write_text("not ri2fl's")
    look_alike = tmp_path / ".out.ome.zarr.abc.ri2fl-staging"  # no marker: not ri2fl's
    look_alike.mkdir()
    (look_alike / "data.txt").write_text("mine")
    rc, _ = _convert(capsys, _ri(tmp_path / "x.npy"), tmp_path / "out.ome.zarr")
    assert rc == 0
    assert user.read_text() == "not ri2fl's"
    assert (look_alike / "data.txt").read_text() == "mine"


def test_a_rerun_needs_overwrite_and_then_replaces_its_own_output(tmp_path, capsys):
    out = tmp_path / "cell.ome.zarr"
    assert _convert(capsys, _ri(tmp_path / "a.npy", 1.35), out)[0] == 0
    rc, err = _convert(capsys, _ri(tmp_path / "b.npy", 1.40), out)
    assert rc == 2
    assert "pass --overwrite" in _one_error_line(err)
    assert _mean(out) < 1.37
    assert _convert(capsys, tmp_path / "b.npy", out, "--overwrite")[0] == 0
    assert _mean(out) > 1.39
    assert is_own_output(out) and not (out / OUTPUT_MARKER).exists()  # marked in its attributes
    assert _leftovers(tmp_path) == []


def test_overwrite_never_replaces_a_file_ri2fl_did_not_write(tmp_path, capsys):
    out = tmp_path / "cell.ome.tif"
    out.write_bytes(b"II*\0" + bytes(200_000))  # someone else's TIFF
    rc, err = _convert(capsys, _ri(tmp_path / "x.npy"), out, "--overwrite")
    assert rc == 2
    assert "not written by ri2fl" in _one_error_line(err)
    assert out.read_bytes() == b"II*\0" + bytes(200_000)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores file permissions")
def test_a_read_only_folder_is_one_line_and_exit_2(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    src = _ri(tmp_path / "x.npy")
    folder.chmod(0o555)
    try:
        rc, err = _convert(capsys, src, folder / "cell.ome.zarr")
    finally:
        folder.chmod(0o755)
    assert rc == 2
    assert "cannot write: permission denied" in _one_error_line(err)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("code", "reason"), [(errno.EROFS, "read-only file system"),
                                               (errno.EACCES, "permission denied")])
def test_a_filesystem_refusing_the_staging_is_one_line(tmp_path, capsys, monkeypatch, code,
                                                      reason):
    import ri2fl._atomic as atomic

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    src = _ri(tmp_path / "x.npy")
    monkeypatch.setattr(atomic.tempfile, "mkdtemp", refuse)
    rc, err = _convert(capsys, src, tmp_path / "cell.ome.zarr")
    assert rc == 2
    assert f"cannot write: {reason}" in _one_error_line(err)


def test_a_full_disk_while_writing_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="no space left"), \
            atomic_path(tmp_path / "t.csv") as tmp:
        tmp.write_text("a,b\n")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_the_ome_zarr_name_is_the_real_name_even_when_staged_twice(tmp_path, capsys):
    from ri2fl.io import write_ome_zarr

    assert _convert(capsys, _ri(tmp_path / "x.npy"), tmp_path / "hl60_ri.ome.zarr")[0] == 0
    assert _zarr_name(tmp_path / "hl60_ri.ome.zarr") == "hl60_ri"
    with atomic_path(tmp_path / "pred.ome.zarr") as tmp:  # as a batch task is given it
        write_ome_zarr(tmp, np.zeros((4, 8, 8), np.float32), (0.2, 0.15, 0.15))
    assert _zarr_name(tmp_path / "pred.ome.zarr") == "pred"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["profile", "report", "stitch"])
def test_single_output_commands_refuse_a_users_file_before_any_work(tmp_path, capsys, command):
    src = _ri(tmp_path / "x.npy")
    out = tmp_path / {"profile": "t.parquet", "report": "r.html", "stitch": "f.ome.zarr"}[command]
    if command == "stitch":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:
        out.write_text("mine")
    rc = main([command, str(src), "-o", str(out), "--overwrite"])
    assert rc == 2
    assert "not written by ri2fl" in _one_error_line(capsys.readouterr().err)
    assert (out / "notes.txt" if command == "stitch" else out).read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x.npy", out.name])


def test_a_table_may_go_into_a_folder_of_inputs_but_not_into_a_store(tmp_path):
    from ri2fl.cli._common import check_file_output

    predictions = tmp_path / "predictions"
    (predictions / "cell.ome.zarr").mkdir(parents=True)
    (predictions / "cell.ome.zarr" / "zarr.json").write_text("{}")
    check_file_output(predictions / "t.parquet", [predictions, None], overwrite=False)
    with pytest.raises(OutputError, match="inside the input"):
        check_file_output(predictions / "cell.ome.zarr" / "t.parquet",
                          [predictions / "cell.ome.zarr"], overwrite=False)


# --------------------------------------------------------------------------- atomic_path

@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_a_crash_inside_the_block_leaves_nothing(tmp_path, exc):
    with pytest.raises(exc), atomic_path(tmp_path / "out.ome.zarr") as tmp:
        tmp.mkdir()
        (tmp / "chunk").write_bytes(b"x")
        (tmp.parent / "scratch.zarr").mkdir()  # scratch goes with the staging
        raise exc("crash")
    assert list(tmp_path.iterdir()) == []


def test_a_crash_while_replacing_keeps_the_old_output(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(RuntimeError), atomic_path(out, overwrite=True) as tmp:
        tmp.write_text("a,b\n3,4\n")
        raise RuntimeError("crash")
    assert out.read_text() == "a,b\n1,2\n"
    assert _leftovers(tmp_path) == []


def test_a_stale_staging_folder_is_removed_and_look_alikes_are_not(tmp_path):
    stale = tmp_path / ".out.ome.zarr.k1ll3d00.ri2fl-staging"
    stale.mkdir()
    (stale / STAGING_MARKER).write_text("999999\n")
    (stale / "out.ome.zarr").mkdir()
    bare = tmp_path / ".out.ome.zarr.n0mark3r.ri2fl-staging"
    bare.mkdir()
    (bare / "keep.txt").write_text("mine")
    other = tmp_path / ".other.ome.zarr.k1ll3d00.ri2fl-staging"
    other.mkdir()
    (other / STAGING_MARKER).write_text("1\n")
    with atomic_path(tmp_path / "out.ome.zarr") as tmp:
        tmp.mkdir()
    assert not stale.exists()
    assert (bare / "keep.txt").read_text() == "mine"
    assert other.exists()  # another output's: its own run cleans it


def test_a_staging_folder_in_use_is_not_removed(tmp_path):
    with atomic_path(tmp_path / "out.csv") as tmp:
        tmp.write_text("a\n")
        assert clean_stale_staging(tmp_path, "out.csv") == 0
        assert tmp.parent.is_dir()
    assert (tmp_path / "out.csv").read_text() == "a\n"


def test_staging_is_private_and_named_after_the_output(tmp_path):
    with atomic_path(tmp_path / "sub" / "t.ome.tif") as tmp:
        assert tmp.name == "t.ome.tif"
        assert tmp.parent.name.startswith(".t.ome.tif.")
        assert tmp.parent.name.endswith(".ri2fl-staging")
        assert tmp.parent.stat().st_mode & 0o777 == 0o700


def test_an_existing_output_that_is_a_file_or_a_link_gives_output_errors(tmp_path):
    (tmp_path / "dangling.ome.zarr").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="symbolic link"):
        check_output(tmp_path / "dangling.ome.zarr", overwrite=True)
    (tmp_path / "f.ome.zarr").write_bytes(b"ri2fl")
    with pytest.raises(OutputError, match="is a file"):
        check_output(tmp_path / "f.ome.zarr", overwrite=True)
    with pytest.raises(OutputError, match="cannot write"), \
            atomic_path(tmp_path / "f.ome.zarr" / "x.csv"):
        pass


def test_a_csv_is_replaced_only_by_a_table_with_its_header(tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("path,cell_type\nx,y\n")
    with pytest.raises(OutputError, match="its header"), atomic_path(out, overwrite=True) as tmp:
        tmp.write_text("other,header\n1,2\n")
    assert out.read_text() == "path,cell_type\nx,y\n"
    with atomic_path(out, overwrite=True) as tmp:
        tmp.write_text("path,cell_type\nz,w\n")
    assert out.read_text() == "path,cell_type\nz,w\n"


def test_check_not_input(tmp_path):
    store = tmp_path / "in.ome.zarr"
    store.mkdir()
    (tmp_path / "alias").symlink_to(store)
    for output, inputs in [(tmp_path / "alias", [store]), (store / "x.tif", [store]),
                           (tmp_path, [store / "a.h5"])]:
        with pytest.raises(OutputError):
            check_not_input(output, inputs)
    check_not_input(tmp_path / "in.ome.zarr2", [store, None])


# --------------------------------------------------------------------------- ownership

def _foreign_tcf(path: Path) -> Path:
    """A TCF as another program writes it: nothing of ri2fl in it."""
    with h5py.File(path, "w") as f:
        f.attrs["FormatVersion"] = "1.4"
        g = f.create_group("Data/3D")
        for key, value in dict(ResolutionX=0.15, ResolutionY=0.15, ResolutionZ=0.2,
                               TimeInterval=1.0, DataCount=1, SizeX=128, SizeY=128,
                               SizeZ=32).items():
            g.attrs[key] = value
        g.create_dataset("000000", data=np.random.default_rng(0).integers(
            13300, 14000, (32, 128, 128)).astype(np.uint16))
    return path


def test_every_writer_marks_its_files(tmp_path):
    from ri2fl._html import write_html_page
    from ri2fl.evaluate.figures import _save
    from ri2fl.io import write_ome_tiff, write_paired, write_table
    from ri2fl.io.paired import PairedSample
    from ri2fl.io.tcf import add_fl_channels, write_tcf
    from ri2fl.models import build, save_checkpoint, write_sha256
    from ri2fl.segment.lipid2d import train_lipid_classifier

    rng = np.random.default_rng(0)
    vol = (1.35 + 0.01 * rng.random((20, 128, 128))).astype(np.float32)
    written = [
        write_ome_tiff(tmp_path / "a.ome.tif", vol, (0.2, 0.15, 0.15)),
        write_tcf(tmp_path / "a.TCF", vol, (0.2, 0.15, 0.15)),
        write_paired(tmp_path / "p.h5", PairedSample(vol, {"nucleus": vol}, (0.2, 0.15, 0.15))),
        write_table(pd.DataFrame(rng.random((50, 400)), columns=[f"feature_{i:03d}_mean"
                                                                 for i in range(400)]),
                    tmp_path / "wide.parquet"),
        write_html_page(tmp_path / "r.html", "t", [("s", "head", ["<p>x</p>" * 20_000])]),
        save_checkpoint(tmp_path / "m.pt", build({"model": {"features": 4, "depth": 2}}),
                        {"model": {"features": 4, "depth": 2}}),
    ]
    written.append(write_sha256(written[-1]))
    foreign = _foreign_tcf(tmp_path / "foreign.TCF")
    written.append(add_fl_channels(foreign, tmp_path / "copy.TCF",
                                   {"nucleus": rng.random((32, 128, 128))}))
    images = [rng.random((32, 32)).astype(np.float32)]
    labels = [np.where(images[0] > 0.9, 1, np.where(images[0] < 0.1, 2, 0)).astype(np.int8)]
    written.append(train_lipid_classifier(images, labels, n_estimators=2).save(
        tmp_path / "l.npz"))
    from matplotlib.figure import Figure
    written.append(_save(Figure(), tmp_path / "f.png"))
    assert not is_own_output(foreign)
    for path in written:
        assert is_own_output(path), path


def test_a_legacy_zarr_store_with_a_ri2fl_block_is_own(tmp_path):
    store = tmp_path / "old.ome.zarr"
    store.mkdir()
    (store / "zarr.json").write_text(json.dumps({"attributes": {"ri2fl": {}}}))
    assert is_own_output(store)
    (store / "zarr.json").write_text(json.dumps({"attributes": {"ome": {}}}))
    assert not is_own_output(store)
