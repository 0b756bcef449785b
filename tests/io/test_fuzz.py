"""Property-based tests: readers round-trip arbitrary small volumes, and hostile files
(truncated, wrong dtype, wrong rank, huge declared sizes, NaN) end in InputError only."""

from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ri2fl.errors import InputError
from ri2fl.io import read, write_ome_tiff, write_ome_zarr, write_paired
from ri2fl.io.paired import PairedSample
from ri2fl.io.tcf import write_tcf

FUZZ = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

shapes = st.tuples(*[st.integers(1, 5)] * 3)
voxels = st.tuples(*[st.floats(0.01, 10.0, allow_nan=False)] * 3)
formats = st.sampled_from(["zarr-0.5", "zarr-0.4", "ome-tiff", "hdf5", "npy", "tcf", "tcf-ldm",
                           "tcf-legacy"])


def _write(fmt: str, path: Path, ri: np.ndarray, voxel) -> tuple[Path, dict]:
    """Write ``ri`` in format ``fmt``; returns the path and the read options it needs."""
    if fmt.startswith("zarr"):
        return write_ome_zarr(path / "a.ome.zarr", ri, voxel, ngff_version=fmt[-3:]), {}
    if fmt == "ome-tiff":
        return write_ome_tiff(path / "a.ome.tif", ri, voxel), {}
    if fmt == "hdf5":
        return write_paired(path / "a.h5", PairedSample(ri=ri, fl={}, voxel_size_um=voxel)), {}
    if fmt == "npy":
        np.save(path / "a.npy", ri)
        return path / "a.npy", {"voxel_size_um": voxel}
    layout = "ldm" if fmt == "tcf-ldm" else "dataset"
    version = "1.2" if fmt == "tcf-legacy" else "1.4"
    # tiles of a size derived from the data: edge tiles padded in most examples
    tiles = tuple(max(1, n // 2 + (n % 3 == 0)) for n in ri.shape)
    return write_tcf(path / "a.TCF", ri, voxel, layout=layout, version=version,
                     tile_shape=tiles), {}


@FUZZ
@given(shape=shapes, voxel=voxels, fmt=formats, seed=st.integers(0, 2**16))
def test_readers_round_trip_any_small_volume(shape, voxel, fmt, seed):
    ri = (1.33 + 0.06 * np.random.default_rng(seed).random(shape)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path, opts = _write(fmt, Path(tmp), ri, voxel)
        vol = read(path, **opts)
        assert vol.spatial_shape == shape
        assert vol.voxel_size_um == pytest.approx(voxel, rel=1e-6)
        atol = 5.1e-5 if fmt in ("tcf", "tcf-ldm") else 0
        np.testing.assert_allclose(vol.data, ri, atol=atol)


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _read_or_input_error(path: Path, **opts) -> None:
    """The only acceptable outcomes: a valid float32 volume, or InputError."""
    try:
        vol = read(path, **opts)
        data = np.asarray(vol.frame(0).data)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert data.dtype == np.float32 and np.all(np.isfinite(data))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(fmt=formats, fraction=st.floats(0.0, 0.98))
def test_truncated_files_give_input_error(fmt, fraction):
    ri = np.full((4, 5, 6), 1.35, np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path, opts = _write(fmt, Path(tmp), ri, (0.2, 0.15, 0.15))
        for file in _files(path):  # OME-Zarr: every chunk and metadata file
            data = file.read_bytes()
            file.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(InputError) as info:  # data was lost: never a silent success
            np.asarray(read(path, **opts).frame(0).data)
        assert "\n" not in str(info.value)


HOSTILE = st.sampled_from([0, -1, 2**40, 2**62, float("nan"), float("inf"), 1e300, b"abc", b"",
                           np.zeros(0), np.arange(3)])
TCF_ATTRS = st.sampled_from([
    ("Data/3D", "ResolutionX"), ("Data/3D", "ResolutionZ"), ("Data/3D", "DataCount"),
    ("Data/3D/000000", "DataSizeX"), ("Data/3D/000000", "DataSizeZ"),
    ("Data/3D/000000", "RIMin"), ("Data/3D/000000", "ScalarType"),
    ("Data/3D/000000/TILE_00", "DataIndexOffsetPointX"),
    ("Data/3D/000000/TILE_00", "DataIndexLastPointY"),
    ("Data/3D/000000/TILE_01", "SamplingStep"), ("Info/Device", "RI"), ("/", "FormatVersion"),
])


@FUZZ
@given(target=TCF_ATTRS, value=HOSTILE)
def test_hostile_tcf_attributes_give_input_error(target, value, monkeypatch):
    monkeypatch.setenv("RI2FL_MAX_VOXELS", str(10**6))
    ri = np.full((3, 4, 5), 1.35, np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_tcf(Path(tmp) / "a.TCF", [ri, ri], 0.2, layout="ldm", scalar_type="uint8")
        group, name = target
        with h5py.File(path, "r+") as f:
            f[group].attrs[name] = np.array([value]) if np.ndim(value) == 0 else value
        _read_or_input_error(path)
        _read_or_input_error(path, frame=1)


@pytest.mark.parametrize("where", ["ri", "Data/3D/000000"])
def test_huge_declared_dataset_is_refused_without_allocating(tmp_path, where):
    """A dataset declaring 10^15 voxels (chunked, never written: a tiny file) is refused."""
    path = tmp_path / ("huge.h5" if where == "ri" else "huge.TCF")
    with h5py.File(path, "w") as f:
        f.create_dataset(where, shape=(10**5,) * 3, dtype=np.uint16, chunks=(1, 64, 64))
        f[where].attrs["voxel_size_um"] = 0.1
        if where != "ri":
            f.attrs["FormatVersion"] = np.array([b"1.4"])
            for a in "XYZ":
                f["Data/3D"].attrs[f"Resolution{a}"] = np.array([0.1])
    assert path.stat().st_size < 100_000
    with pytest.raises(InputError, match="larger than"):
        read(path)


@pytest.mark.parametrize("data", [
    np.array([["a", "b"]] * 3, dtype="S1").reshape(3, 2, 1),   # strings
    np.zeros((3, 4, 5), dtype=np.complex64),                   # complex
    np.zeros(5, np.float32),                                   # 1D
    np.zeros((4, 5), np.float32),                              # 2D
    np.zeros((1, 2, 3, 4, 5, 6), np.float32),                  # 6D
])
def test_wrong_dtype_or_rank_in_hdf5_gives_input_error(tmp_path, data):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f["ri"] = data
        f["ri"].attrs["voxel_size_um"] = 0.1
    with pytest.raises(InputError):
        read(path)


@pytest.mark.parametrize("fmt", ["zarr-0.5", "ome-tiff", "hdf5", "npy", "tcf-legacy"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_gives_input_error(tmp_path, fmt, bad):
    ri = np.full((3, 4, 5), 1.35, np.float32)
    ri[1, 2, 3] = bad
    path, opts = _write(fmt, tmp_path, ri, 0.2)
    with pytest.raises(InputError, match="NaN or infinite"):
        read(path, **opts)


def test_wrong_rank_tiff_and_zarr_give_input_error(tmp_path):
    tifffile.imwrite(tmp_path / "img.tif", np.ones((8, 9), np.float32))
    with pytest.raises(InputError, match="3D"):
        read(tmp_path / "img.tif", voxel_size_um=0.1)
    with pytest.raises(InputError, match="cannot write a 2D"):
        write_ome_zarr(tmp_path / "x.ome.zarr", np.ones((8, 9), np.float32), 0.1)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(fmt=formats, seed=st.integers(0, 2**32 - 1), n_flips=st.integers(1, 8))
def test_corrupted_bytes_give_input_error(fmt, seed, n_flips):
    """Random bytes overwritten anywhere in the file (headers, metadata, compressed chunks)."""
    rng = np.random.default_rng(seed)
    ri = (1.33 + 0.06 * rng.random((4, 5, 6))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path, opts = _write(fmt, Path(tmp), ri, (0.2, 0.15, 0.15))
        for file in _files(path):
            data = bytearray(file.read_bytes())
            for i in rng.integers(0, len(data), n_flips):
                data[i] = int(rng.integers(0, 256))
            file.write_bytes(bytes(data))
        _read_or_input_error(path, **opts)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n_flips=st.integers(1, 8))
def test_corrupted_paired_files_give_input_error(seed, n_flips):
    from ri2fl.io import read_paired
    rng = np.random.default_rng(seed)
    ri = (1.33 + 0.06 * rng.random((4, 5, 6))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_paired(Path(tmp) / "p.h5", PairedSample(ri=ri, fl={"nucleus": ri},
                                                              voxel_size_um=0.2))
        data = bytearray(path.read_bytes())
        for i in rng.integers(0, len(data), n_flips):
            data[i] = int(rng.integers(0, 256))
        path.write_bytes(bytes(data))
        try:
            sample = read_paired(path)
        except InputError:
            return
        assert sample.ri.shape == ri.shape


def test_special_files_are_refused_without_blocking(tmp_path):
    import os
    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)  # opening it for reading would block until a writer appears
    with pytest.raises(InputError, match="not a regular file"):
        read(fifo)


def _edit_zarr_json(path: Path, edit) -> None:
    import json
    for meta in (path / "zarr.json", path / "0" / "zarr.json"):
        doc = json.loads(meta.read_text())
        edit(meta.parent.name, doc)
        meta.write_text(json.dumps(doc))


@pytest.mark.parametrize("edit", [
    lambda n, d: d.update(shape=[10**6] * 3) if n == "0" else None,          # huge
    lambda n, d: d.update(shape=[2, 3]) if n == "0" else None,               # wrong rank
    lambda n, d: d.update(data_type="complex64") if n == "0" else None,      # wrong dtype
    lambda n, d: d["attributes"].pop("ome") if n != "0" else None,           # not NGFF
    lambda n, d: (d["attributes"]["ome"]["multiscales"][0]["datasets"][0]
                  ["coordinateTransformations"][0].update(scale=[0, -1, 1])) if n != "0"
    else None,                                                               # bad scale
    lambda n, d: (d["attributes"]["ome"]["multiscales"][0].update(axes=["q", "y", "x"]))
    if n != "0" else None,                                                   # bad axes
])
def test_hostile_ome_zarr_metadata_gives_input_error(tmp_path, edit, monkeypatch):
    monkeypatch.setenv("RI2FL_MAX_VOXELS", str(10**7))
    path = write_ome_zarr(tmp_path / "a.ome.zarr", np.full((3, 4, 5), 1.35, np.float32), 0.2)
    _edit_zarr_json(path, edit)
    with pytest.raises(InputError):
        np.asarray(read(path).data)


def test_eager_reads_are_bounded_but_lazy_reads_are_not(tmp_path, monkeypatch):
    """Many channels of a big field: refused eagerly, fine lazily (nothing allocated)."""
    import zarr
    # not zeros: zarr leaves out chunks of fill values, and a store with none is refused
    path = write_ome_zarr(tmp_path / "big.ome.zarr", np.ones((2, 2, 3, 4), np.float32), 0.2,
                          channel_names=["a", "b"])
    zarr.open_array(path / "0", mode="r+").resize((5000, 2, 3, 4))  # 120 000 voxels
    monkeypatch.setenv("RI2FL_MAX_VOXELS", "1000")
    with pytest.raises(InputError, match="read it lazily"):
        read(path)
    vol = read(path, lazy=True)
    assert vol.shape == (5000, 2, 3, 4)
    assert vol.channel(4999).data.shape == (2, 3, 4)
