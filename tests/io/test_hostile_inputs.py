"""Hostile or lying inputs (issue #28): every reader refuses them with one InputError line,
never hangs (FIFOs, /dev/zero), never allocates what a file only declares, never passes off
missing data or corrupt metadata as a volume."""

from __future__ import annotations

import json
import os
import tempfile
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from ri2fl.cli.main import main
from ri2fl.errors import ConfigError, InputError
from ri2fl.io import read, read_paired, write_ome_tiff, write_ome_zarr, write_paired
from ri2fl.io._checks import check_regular_file, check_regular_tree
from ri2fl.io.paired import PairedSample
from ri2fl.io.tcf import write_tcf

pytestmark = pytest.mark.timeout(30)

RI = np.full((3, 4, 5), 1.35, np.float32)
VOXEL = (0.2, 0.15, 0.15)


def _zarr(tmp_path: Path, version: str = "0.5", data: np.ndarray = RI, **kw) -> Path:
    return write_ome_zarr(tmp_path / f"a{version}.ome.zarr", data, VOXEL, ngff_version=version,
                          **kw)


def _group_meta(path: Path) -> Path:
    return path / ("zarr.json" if (path / "zarr.json").exists() else ".zattrs")


def _edit_attrs(path: Path, edit) -> None:
    """Apply ``edit(attrs)`` to the group attributes of an OME-Zarr store (v3 or v2)."""
    meta = _group_meta(path)
    doc = json.loads(meta.read_text())
    edit(doc.get("attributes", doc) if meta.name == "zarr.json" else doc)
    meta.write_text(json.dumps(doc))


def _multiscale(attrs: dict) -> dict:
    return attrs.get("ome", attrs)["multiscales"][0]


def _not_ri2fl(path: Path) -> Path:
    """The store as another writer would leave it: without ri2fl's attribute block."""
    _edit_attrs(path, lambda a: a.pop("ri2fl"))
    return path


def _assert_cli_refuses(path: Path, capsys, *extra: str) -> str:
    """``ri2fl info`` exits 2 with one line on stderr and no traceback; returns the line."""
    assert main(["info", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


# ------------------------------------------------------------------ 1. pipes and devices

def _replace(target: Path, kind: str) -> None:
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    else:
        os.symlink("/dev/zero", target)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize(("version", "name"), [
    ("0.5", "zarr.json"), ("0.5", "0/zarr.json"), ("0.5", "0/c/0/0/0"),
    ("0.4", ".zattrs"), ("0.4", ".zgroup"), ("0.4", "0/.zarray"), ("0.4", "0/0/0/0"),
])
def test_store_entries_that_are_pipes_or_devices_are_refused(tmp_path, kind, version, name):
    path = _zarr(tmp_path, version)
    _replace(path / name, kind)
    with pytest.raises(InputError, match="not a regular file"):
        read(path)


def test_cli_refuses_a_store_with_a_fifo_without_hanging(tmp_path, capsys):
    path = _zarr(tmp_path)
    _replace(path / "zarr.json", "fifo")
    assert "named pipe" in _assert_cli_refuses(path, capsys)


def test_oversized_metadata_and_chunk_files_are_refused_unread(tmp_path):
    path = _zarr(tmp_path)
    with open(path / "0" / "c" / "0" / "0" / "0", "r+b") as fh:  # sparse: nothing written
        fh.truncate(2**30)
    with pytest.raises(InputError, match="more than the"):
        read(path)
    with open(path / "zarr.json", "r+b") as fh:
        fh.truncate(2**25)
    with pytest.raises(InputError, match="more than the"):
        read(path)


def test_regular_tree_check_follows_links_once_and_finds_buried_devices(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"x")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "loop")  # a directory-link loop
    assert check_regular_tree(tmp_path) == 1
    os.symlink("/dev/null", tmp_path / "a" / "b" / "null")
    with pytest.raises(InputError, match="character device"):
        check_regular_tree(tmp_path)
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    with pytest.raises(InputError, match="broken symbolic link"):
        check_regular_file(tmp_path / "dangling")


def test_hdf5_links_and_external_data_in_pipes_are_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.h5")
    with h5py.File(tmp_path / "link.h5", "w") as f:
        f["ri"] = h5py.ExternalLink("pipe.h5", "/ri")
        f.attrs["voxel_size_um"] = 0.2
    with pytest.raises(InputError, match="named pipe"):
        read(tmp_path / "link.h5")
    with h5py.File(tmp_path / "tcf_link.h5", "w") as f:  # what the TCF detection looks at
        f["Data"] = h5py.ExternalLink("pipe.h5", "/Data")
        f["ri"] = RI
        f.attrs["voxel_size_um"] = 0.2
    with pytest.raises(InputError, match="named pipe"):
        read(tmp_path / "tcf_link.h5")
    raw = tmp_path / "ri.raw"
    raw.write_bytes(RI.tobytes())
    with h5py.File(tmp_path / "ext.h5", "w") as f:
        f.create_dataset("ri", RI.shape, np.float32, external=[(str(raw), 0, RI.nbytes)])
        f["ri"].attrs["voxel_size_um"] = 0.2
    np.testing.assert_array_equal(read(tmp_path / "ext.h5").data, RI)
    _replace(raw, "fifo")
    with pytest.raises(InputError, match="named pipe"):
        read(tmp_path / "ext.h5")


def test_paired_file_that_is_a_pipe_is_refused(tmp_path):
    os.mkfifo(tmp_path / "p.h5")
    with pytest.raises(InputError, match="not a regular file"):
        read_paired(tmp_path / "p.h5")


@pytest.mark.parametrize("name", ["a.npy", "a.h5", "a.TCF", "a.tif"])
def test_file_linked_to_dev_zero_is_refused(tmp_path, capsys, name):
    os.symlink("/dev/zero", tmp_path / name)
    with pytest.raises(InputError, match="not a regular file"):
        read(tmp_path / name, voxel_size_um=0.2)
    assert "not a regular file" in _assert_cli_refuses(tmp_path / name, capsys)


# ------------------------------------------------------------------ 2. declared vs stored

@pytest.mark.parametrize(("shape", "chunks"), [
    ((1024, 1024, 1024), (1, 64, 64)),   # 1.4 kB file declaring 4 GiB
    ((10**5, 16, 32, 32), None),         # a time-lapse never written (contiguous)
])
def test_hdf5_declaring_data_it_does_not_store_is_refused(tmp_path, capsys, shape, chunks):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("ri", shape=shape, dtype=np.float32, chunks=chunks)
        f["ri"].attrs["voxel_size_um"] = 0.2
    assert path.stat().st_size < 100_000
    with pytest.raises(InputError, match="stores no data"):
        read(path)
    assert "stores no data" in _assert_cli_refuses(path, capsys)


def test_hdf5_written_in_part_is_refused_unless_fill_missing(tmp_path):
    path = tmp_path / "part.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("ri", shape=(4, 4, 5), dtype=np.float32, chunks=(1, 4, 5))
        ds[0] = 1.35
        ds.attrs["voxel_size_um"] = 0.2
    with pytest.raises(InputError, match="stores 1 of its 4 chunks"):
        read(path)
    assert read(path, fill_missing=True).data[1].max() == 0


def test_tcf_frame_never_written_is_refused(tmp_path):
    path = write_tcf(tmp_path / "a.TCF", RI, VOXEL)
    with h5py.File(path, "r+") as f:
        del f["Data/3D/000000"]
        f.create_dataset("Data/3D/000000", shape=RI.shape, dtype=np.uint16)
    with pytest.raises(InputError, match="stores no data"):
        read(path)


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_zarr_declaring_more_than_it_stores_is_refused(tmp_path, capsys, version):
    import zarr
    path = _zarr(tmp_path, version)
    zarr.open_array(path / "0", mode="r+").resize((1024, 1024, 1024))
    with pytest.raises(InputError, match="missing"):
        read(_not_ri2fl(path))
    assert "missing" in _assert_cli_refuses(path, capsys)


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_zarr_with_no_chunk_at_all_is_refused_even_from_ri2fl(tmp_path, version):
    import shutil
    path = _zarr(tmp_path, version)
    chunks = path / "0" / ("c" if version == "0.5" else "0")
    shutil.rmtree(chunks)
    with pytest.raises(InputError, match="stores no data"):
        read(path)
    with pytest.raises(InputError, match="stores no data"):
        np.asarray(read(path, lazy=True).data)
    vol = read(path, fill_missing=True, modality="fl")
    assert np.all(vol.data == 0)


def test_missing_chunks_are_refused_unless_written_by_ri2fl_or_fill_missing(tmp_path):
    """ri2fl's writer leaves out chunks that hold only the fill value (zarr's default)."""
    data = RI.copy()
    data[0] = 0  # one chunk of zeros: never stored
    path = _zarr(tmp_path, data=data, chunks=(1, 4, 5))
    assert not (path / "0" / "c" / "0" / "0" / "0").exists()
    np.testing.assert_array_equal(read(path).data, data)
    _not_ri2fl(path)
    for lazy in (False, True):
        with pytest.raises(InputError, match="1 of the 3 chunk files"):
            read(path, lazy=lazy)
    np.testing.assert_array_equal(read(path, fill_missing=True).data, data)


def test_chunk_keys_that_disagree_with_dimension_separator_are_missing_chunks(tmp_path):
    path = _zarr(tmp_path, "0.4")
    zarray = path / "0" / ".zarray"
    meta = json.loads(zarray.read_text())
    assert meta["dimension_separator"] == "/"
    zarray.write_text(json.dumps({**meta, "dimension_separator": "."}))
    with pytest.raises(InputError, match="dimension_separator"):
        read(path)


def test_zarr_time_lapse_frames_are_checked_when_loaded(tmp_path):
    import shutil
    frames = np.stack([RI, RI])
    path = write_ome_zarr(tmp_path / "t.ome.zarr", frames, VOXEL, axes="tzyx")
    shutil.rmtree(path / "0" / "c" / "1")
    vol = read(path)
    assert vol.frame(0).data.shape == RI.shape
    with pytest.raises(InputError, match="stores no data"):
        vol.frame(1)


# ------------------------------------------------------------------ 3. TIFF metadata lies

def test_ome_tiff_declaring_more_planes_than_it_holds_is_refused_unallocated(tmp_path):
    path = write_ome_tiff(tmp_path / "lie.ome.tif", np.full((24, 40, 48), 1.35, np.float32),
                          VOXEL)
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    tifffile.tiffcomment(path, xml.replace('SizeZ="24"', 'SizeZ="30000"').encode())
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="missing"):
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6  # the zero-padded volume would be 230 MB


def test_contiguous_tiff_declaring_more_bytes_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "cut.ome.tif"
    tifffile.imwrite(path, np.full((24, 40, 48), 1.35, np.float32), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.15, "PhysicalSizeY": 0.15,
                               "PhysicalSizeZ": 0.2})
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 40 * 48 * 4 * 3)
    with pytest.raises(InputError):
        read(path)


# ------------------------------------------------------------------ 4. malformed metadata

def _set_scale(value):
    return lambda a: _multiscale(a)["datasets"][0]["coordinateTransformations"][0].update(
        scale=value)


@pytest.mark.parametrize("version", ["0.5", "0.4"])
@pytest.mark.parametrize(("edit", "message"), [
    (_set_scale("scale"), "not 3 positive numbers"),
    (_set_scale([0.2, 0.15]), "not 3 positive numbers"),
    (_set_scale([0.2, "0.15", 0.15]), "not 3 positive numbers"),
    (_set_scale([True, 0.15, 0.15]), "not 3 positive numbers"),
    (_set_scale(None), "not 3 positive numbers"),
    (lambda a: _multiscale(a)["datasets"][0].update(coordinateTransformations="scale"),
     "not a list of transformations"),
    (lambda a: _multiscale(a)["datasets"][0].update(coordinateTransformations=[]),
     "voxel size is unknown"),
    (lambda a: _multiscale(a).update(coordinateTransformations=[{"type": "scale",
                                                                "scale": [1, 1]}]),
     "not 3 positive numbers"),
    (lambda a: _multiscale(a).update(datasets=["0"]), "not a list of {'path'"),
    (lambda a: _multiscale(a).update(datasets={"path": "0"}), "not a list of {'path'"),
    (lambda a: _multiscale(a).update(datasets=[{"path": "../../etc"}]), "outside the store"),
    (lambda a: _multiscale(a)["axes"][2].update(unit="parsec"), "unknown length unit"),
    (lambda a: _multiscale(a).update(axes=7), "not a list"),
    (lambda a: a.update(ome="junk") if "ome" in a else a.update(multiscales="junk"),
     "no OME-NGFF"),
])
def test_malformed_ngff_metadata_is_refused(tmp_path, version, edit, message):
    path = _zarr(tmp_path, version)
    _edit_attrs(path, edit)
    with pytest.raises(InputError, match=message):
        read(path)


def test_cli_refuses_a_malformed_scale(tmp_path, capsys):
    path = _zarr(tmp_path)
    _edit_attrs(path, _set_scale("scale"))
    assert "scale" in _assert_cli_refuses(path, capsys)


# ------------------------------------------------------------------ 5. medium index

BAD_MEDIA = [float("nan"), 99.0, -3.0, 1.2, "watery"]


def _hdf5_with_medium(tmp_path: Path, value) -> Path:
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["ri"] = RI
        f["ri"].attrs["voxel_size_um"] = 0.2
        f["ri"].attrs["medium_index"] = value
    return path


def _zarr_with_medium(tmp_path: Path, value) -> Path:
    path = _zarr(tmp_path)
    _edit_attrs(path, lambda a: a["ri2fl"].update(medium_index=value))
    return path


def _tcf_with_medium(tmp_path: Path, value) -> Path:
    path = write_tcf(tmp_path / "m.TCF", RI, VOXEL)
    with h5py.File(path, "r+") as f:
        f["Info/Device"].attrs["RI"] = np.array([value.encode() if isinstance(value, str)
                                                 else value])
    return path


def _paired_with_medium(tmp_path: Path, value) -> Path:
    path = write_paired(tmp_path / "p.h5", PairedSample(ri=RI, fl={}, voxel_size_um=VOXEL))
    with h5py.File(path, "r+") as f:
        f["ri"].attrs["medium_index"] = value
    return path


@pytest.mark.parametrize("value", BAD_MEDIA)
@pytest.mark.parametrize("make", [_hdf5_with_medium, _zarr_with_medium, _tcf_with_medium])
def test_implausible_medium_index_in_a_file_is_refused(tmp_path, make, value):
    path = make(tmp_path, value)
    with pytest.raises(InputError, match="medium index"):
        read(path)
    assert read(path, medium_index=1.337).medium_index == 1.337  # the caller's value wins


@pytest.mark.parametrize("value", BAD_MEDIA)
def test_implausible_medium_index_in_a_paired_file_is_refused(tmp_path, value):
    with pytest.raises(InputError, match="medium index"):
        read_paired(_paired_with_medium(tmp_path, value))


def test_medium_index_flag_and_files_share_one_range(tmp_path, capsys):
    from ri2fl.cli._common import check_medium_index
    path = _zarr(tmp_path)
    for ok in (1.30, 1.337, 1.60):
        check_medium_index(ok)
        assert read(path, medium_index=ok).medium_index == ok
    for bad in (1.29, 1.61, float("nan")):
        with pytest.raises(ConfigError, match="medium index"):
            check_medium_index(bad)
        with pytest.raises(InputError, match="medium index"):
            read(path, medium_index=bad)
    _edit_attrs(path, lambda a: a["ri2fl"].update(medium_index=float("nan")))
    assert "medium index" in _assert_cli_refuses(path, capsys, "--json")


# ------------------------------------------------------------------ 6. empty axes

def _empty_hdf5(tmp_path: Path, shape) -> Path:
    path = tmp_path / "e.h5"
    with h5py.File(path, "w") as f:
        f["ri"] = np.zeros(shape, np.float32)
        f["ri"].attrs["voxel_size_um"] = 0.2
        if len(shape) == 5:
            f["ri"].attrs["channel_names"] = []
    return path


def _empty_npy(tmp_path: Path, shape) -> tuple[Path, dict]:
    np.save(tmp_path / "e.npy", np.zeros(shape, np.float32))
    return tmp_path / "e.npy", {"voxel_size_um": 0.2}


def _empty_zarr(tmp_path: Path, shape) -> Path:
    import zarr
    axes = {4: "tzyx", 5: "tczyx"}[len(shape)]
    full = tuple(max(1, n) for n in shape)
    path = write_ome_zarr(tmp_path / "e.ome.zarr", np.full(full, 1.35, np.float32), VOXEL,
                          axes=axes, channel_names=["ri"] * (full[1] if axes[1] == "c" else 1))
    zarr.open_array(path / "0", mode="r+").resize(shape)
    return path


@pytest.mark.parametrize(("shape", "what"), [((0, 3, 4, 5), "0 time points"),
                                            ((2, 0, 3, 4, 5), "0 channels")])
def test_empty_time_or_channel_axis_is_refused(tmp_path, capsys, shape, what):
    if len(shape) == 4:
        path, opts = _empty_npy(tmp_path, shape)
        with pytest.raises(InputError, match=what):
            read(path, **opts)
    with pytest.raises(InputError, match=what):
        read(_empty_hdf5(tmp_path, shape))
    path = _empty_zarr(tmp_path, shape)
    with pytest.raises(InputError, match=what):
        read(path)
    assert what in _assert_cli_refuses(path, capsys)


# ------------------------------------------------------------------ 7. RI that is not RI

def test_all_zero_ri_is_refused_but_zero_padding_is_not(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((3, 4, 5), np.float32))
    with pytest.raises(InputError, match="no voxel looks like a refractive index"):
        read(tmp_path / "z.npy", voxel_size_um=0.2)
    assert read(tmp_path / "z.npy", voxel_size_um=0.2, modality="fl").data.max() == 0
    padded = np.pad(RI, 2)
    np.save(tmp_path / "p.npy", padded)
    np.testing.assert_array_equal(read(tmp_path / "p.npy", voxel_size_um=0.2).data, padded)


# ------------------------------------------------------------------ 8. info's memory

def test_info_holds_one_copy_of_the_volume(tmp_path, capsys, monkeypatch):
    """The volume once, plus temporaries of one block of the checks (here 4096 voxels)."""
    monkeypatch.setattr("ri2fl.io._checks._BLOCK", 1 << 12)
    ri = np.full((32, 128, 128), 1.35, np.float32)  # 2 MB
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as f:
        f["ri"] = ri
        f["ri"].attrs["voxel_size_um"] = 0.2
    main(["info", str(path)])  # imports and caches outside the measurement
    capsys.readouterr()
    tracemalloc.start()
    try:
        assert main(["info", str(path), "--json"]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert json.loads(capsys.readouterr().out)["shape"] == list(ri.shape)
    assert peak < 1.15 * ri.nbytes


def test_info_refuses_huge_declared_sizes_before_reading(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RI2FL_MAX_VOXELS", str(10**6))
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("ri", shape=(200, 100, 100), dtype=np.float32, chunks=(1, 100, 100))
        f["ri"][...] = 1.35
        f["ri"].attrs["voxel_size_um"] = 0.2
    assert "larger than" in _assert_cli_refuses(path, capsys)


# ------------------------------------------------------------------ property

ENTRY_EDITS = st.sampled_from(["fifo", "dev-zero", "folder", "empty", "garbage", "delete"])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(version=st.sampled_from(["0.5", "0.4"]), pick=st.integers(0, 10**6), edit=ENTRY_EDITS)
def test_any_store_entry_replaced_by_anything_gives_input_error_or_data(version, pick, edit):
    """Whatever one entry of a store becomes, reading ends quickly in data or InputError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _not_ri2fl(write_ome_zarr(Path(tmp) / "a.ome.zarr", RI, VOXEL,
                                         ngff_version=version, chunks=(1, 4, 5)))
        files = sorted(p for p in path.rglob("*") if p.is_file())
        target = files[pick % len(files)]
        if edit in ("fifo", "dev-zero"):
            _replace(target, edit)
        elif edit == "folder":
            target.unlink()
            target.mkdir()
        elif edit == "delete":
            target.unlink()
        else:
            target.write_bytes(b"" if edit == "empty" else b"\x00\xff{[" * 100)
        try:
            data = np.asarray(read(path).data)
        except InputError as exc:
            assert "\n" not in str(exc)
            return
        np.testing.assert_array_equal(data, RI)


@pytest.mark.timeout(30)
def test_cli_reads_missing_chunks_only_when_asked(tmp_path, capsys):
    data = RI.copy()
    data[0] = 0  # one chunk of zeros: never stored
    path = _not_ri2fl(_zarr(tmp_path, data=data, chunks=(1, 4, 5)))
    assert "--fill-missing" in _assert_cli_refuses(path, capsys)
    assert main(["info", str(path), "--fill-missing", "--json"]) == 0
    out = tmp_path / "copy.ome.zarr"
    assert main(["convert", str(path), str(out), "--fill-missing"]) == 0
    np.testing.assert_array_equal(read(out).data, data)
