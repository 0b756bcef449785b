"""TCF files in every layout, built here as real files store them, read back to known RI."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from ri2fl.cli.main import main
from ri2fl.errors import InputError, OutputError
from ri2fl.io import read
from ri2fl.io import tcf as tcf_mod
from ri2fl.io.tcf import add_fl_channels, write_tcf

VOXEL = (0.2, 0.15, 0.12)


@pytest.fixture
def ri(rng):
    return (1.337 + 0.05 * rng.random((4, 6, 7))).astype(np.float32)


def _one(v):
    return np.array([v.encode() if isinstance(v, str) else v])


@pytest.mark.parametrize(("version", "layout", "scalar", "compression", "atol"), [
    ("1.2", "dataset", "uint16", None, 1e-7),       # legacy float RI
    ("1.3", "dataset", "uint16", "gzip", 5.1e-5),   # uint16 RI x 1e4
    ("1.4", "ldm", "uint16", "lz4", 5.1e-5),        # tiles, hdf5plugin filter
    ("1.4", "ldm", "uint8", "zstd", 5.1e-4),        # tiles, v / 1000 + RIMin
])
def test_every_layout_reads_back_known_ri(tmp_path, ri, version, layout, scalar, compression,
                                          atol):
    path = write_tcf(tmp_path / "a.TCF", ri, VOXEL, version=version, layout=layout,
                     scalar_type=scalar, compression=compression, medium_index=1.336)
    vol = read(path)
    assert vol.axes == "zyx" and vol.voxel_size_um == pytest.approx(VOXEL)
    assert vol.medium_index == pytest.approx(1.336)
    assert vol.metadata["FormatVersion"] == version
    np.testing.assert_allclose(vol.data, ri, atol=atol)
    with h5py.File(path) as f:  # attributes stored as 1-element arrays, strings as bytes
        assert f.attrs["FormatVersion"].shape == (1,)
        assert isinstance(f.attrs["FormatVersion"][0], bytes)
        assert f["Data/3D"].attrs["ResolutionZ"].shape == (1,)
        node = f["Data/3D/000000"]
        assert isinstance(node, h5py.Group) == (layout == "ldm")


def test_uint16_zeros_are_medium(tmp_path, ri):
    path = write_tcf(tmp_path / "a.TCF", ri, VOXEL, medium_index=1.335)
    with h5py.File(path, "r+") as f:
        f["Data/3D/000000"][0] = 0
    vol = read(path)
    np.testing.assert_allclose(vol.data[0], 1.335)
    np.testing.assert_allclose(read(path, medium_index=1.333).data[0], 1.333)


def _ldm_file(path, ri, scalar_uint8: bool):
    """A hand-built LDM frame: two padded tiles with garbage padding and a reduced tile."""
    nz, ny, nx = ri.shape
    with h5py.File(path, "w") as f:
        f.attrs["FormatVersion"] = _one("1.4")
        g = f.create_group("Data/3D")
        for k, v in {"DataCount": 1, "ResolutionX": 0.12, "ResolutionY": 0.15,
                     "ResolutionZ": 0.2}.items():
            g.attrs[k] = _one(v)
        node = g.create_group("000000")
        ri_min = 1.3
        stored = (np.round((ri - ri_min) * 1000).astype(np.uint8) if scalar_uint8
                  else np.round(ri * 1e4).astype(np.uint16))
        for k, v in {"DataSizeX": nx, "DataSizeY": ny, "DataSizeZ": nz, "NumberOfTiles": 3,
                     "RIMin": ri_min}.items():
            node.attrs[k] = _one(v)
        if scalar_uint8:
            node.attrs["ScalarType"] = _one(1)
        half = nx // 2
        for i, (x0, x1) in enumerate([(0, half), (half, nx)]):
            block = np.full((nz, ny, 8), 200, dtype=stored.dtype)  # padding = garbage
            block[:, :, : x1 - x0] = stored[:, :, x0:x1]
            t = node.create_dataset(f"TILE_{i:02d}", data=block)
            for a, (first, last) in zip("ZYX", [(0, nz - 1), (0, ny - 1), (x0, x1 - 1)]):
                t.attrs[f"DataIndexOffsetPoint{a}"] = _one(first)
                t.attrs[f"DataIndexLastPoint{a}"] = _one(last)
            t.attrs["SamplingStep"] = _one(1)
        reduced = node.create_dataset("TILE_02", data=np.ones((nz, ny, nx), stored.dtype))
        reduced.attrs["SamplingStep"] = _one(2)
        for a, n in zip("ZYX", ri.shape):
            reduced.attrs[f"DataIndexOffsetPoint{a}"] = _one(0)
            reduced.attrs[f"DataIndexLastPoint{a}"] = _one(n - 1)
    return path


@pytest.mark.parametrize("uint8", [True, False])
def test_ldm_padding_cut_and_reduced_tiles_skipped(tmp_path, ri, uint8):
    vol = read(_ldm_file(tmp_path / "ldm.TCF", ri, uint8))
    np.testing.assert_allclose(vol.data, ri, atol=5.1e-4 if uint8 else 5.1e-5)


def test_ldm_tiles_that_do_not_cover_the_frame_are_refused(tmp_path, ri):
    path = _ldm_file(tmp_path / "ldm.TCF", ri, True)
    with h5py.File(path, "r+") as f:
        del f["Data/3D/000000/TILE_01"]
    with pytest.raises(InputError, match="do not cover"):
        read(path)


def test_multiframe_is_lazy_one_frame_reads_one_frame(tmp_path, ri, monkeypatch):
    frames = [ri + 0.001 * t for t in range(5)]
    path = write_tcf(tmp_path / "t.TCF", frames, VOXEL, layout="ldm", time_interval_s=30)
    calls = []
    real = tcf_mod._read_node
    monkeypatch.setattr(tcf_mod, "_read_node", lambda node, *a: calls.append(node.name)
                        or real(node, *a))
    vol = read(path)
    assert vol.axes == "tzyx" and vol.time_points == 5 and vol.time_interval_s == 30
    assert calls == []  # nothing decoded yet
    np.testing.assert_allclose(vol.frame(3).data, frames[3], atol=5.1e-5)
    assert calls == ["/Data/3D/000003"]
    calls.clear()
    np.testing.assert_allclose(read(path, frame=-1).data, frames[4], atol=5.1e-5)
    assert calls == ["/Data/3D/000004"]


def test_fl_channels_with_own_voxel_size_and_offset(tmp_path, ri, rng):
    gfp = (rng.random((2, 3, 6, 7)) * 250).astype(np.uint8)
    rfp = (rng.random((2, 3, 6, 7)) * 4000).astype(np.uint16)
    path = write_tcf(tmp_path / "fl.TCF", [ri, ri, ri], VOXEL, fl={"gfp": gfp, "rfp": rfp},
                     fl_voxel_size_um=(0.4, 0.15, 0.12), fl_offset_z_um=[0.6, 0.8],
                     layout="ldm")
    fl = read(path, modality="fl")
    assert fl.axes == "tczyx" and fl.shape == (2, 2, 3, 6, 7)   # FL has 2 of 3 time points
    assert fl.channel_names == ["gfp", "rfp"]
    assert fl.voxel_size_um == pytest.approx((0.4, 0.15, 0.12))
    assert fl.metadata["fl_offset_z_um"] == pytest.approx([0.6, 0.8])
    assert fl.metadata["times_s"] == pytest.approx([0.0, 1.0])
    one = read(path, modality="fl", frame=1)
    assert one.axes == "czyx"
    np.testing.assert_array_equal(one.data[0], gfp[1])
    np.testing.assert_array_equal(one.data[1], rfp[1])
    assert read(path).metadata["fl_channels"] == ["gfp", "rfp"]


def test_mip_reads_as_single_slice(tmp_path, ri):
    path = write_tcf(tmp_path / "m.TCF", ri, VOXEL, layout="ldm")
    mip = read(path, modality="mip")
    assert mip.shape == (1, 6, 7)
    np.testing.assert_allclose(mip.data[0], ri.max(axis=0), atol=5.1e-5)


def test_tcf_without_3d_group_is_a_clear_error(tmp_path):
    path = tmp_path / "no3d.TCF"
    with h5py.File(path, "w") as f:
        f.create_group("Data/BF")
        f.attrs["FormatVersion"] = _one("1.4")
    with pytest.raises(InputError, match="Data/3D"):
        read(path)


def test_add_fl_channels_writes_uint8_times_255(tmp_path, ri, rng):
    src = write_tcf(tmp_path / "a.TCF", ri, VOXEL)
    pred = {"membrane": rng.random(ri.shape), "nucleus": np.full(ri.shape, 2.0)}
    dst = add_fl_channels(src, tmp_path / "b.TCF", pred)
    with h5py.File(dst) as f:
        assert f["Data/3DFL/CH0/000000"].dtype == np.uint8
        assert f["Data/3DFL"].attrs["Channels"][0] == 2
    fl = read(dst, modality="fl")
    assert fl.channel_names == ["membrane", "nucleus"]
    np.testing.assert_array_equal(fl.data[0], np.round(pred["membrane"] * 255))
    assert fl.data[1].max() == 255  # clipped to [0, 1] first
    np.testing.assert_allclose(read(dst).data, read(src).data)
    with pytest.raises(OutputError, match="--overwrite"):
        add_fl_channels(dst, dst, {"actin": pred["membrane"]})
    add_fl_channels(dst, dst, {"actin": pred["membrane"]}, overwrite=True)  # replaces 3DFL
    assert read(dst, modality="fl").channel_names == ["actin"]


def test_info_json_on_tcf(tmp_path, ri, capsys):
    path = write_tcf(tmp_path / "a.TCF", [ri, ri + 0.01], VOXEL,
                     fl={"gfp": np.ones((2, *ri.shape), np.uint8)})
    assert main(["info", str(path), "--json", "--frame", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "tcf" and info["time_points"] == 2
    assert info["shape"] == list(ri.shape) and info["voxel_size_um"] == pytest.approx(VOXEL)
    assert info["ri_min"] == pytest.approx(ri.min() + 0.01, abs=1e-4)
    assert info["fl_channels"] == 1 and info["fl_channel_names"] == ["gfp"]


def test_convert_tcf_timelapse_to_ome_zarr(tmp_path, ri):
    path = write_tcf(tmp_path / "a.TCF", [ri, ri + 0.01], VOXEL, time_interval_s=60)
    out = tmp_path / "a.ome.zarr"
    assert main(["convert", str(path), str(out)]) == 0
    vol = read(out)
    assert vol.axes == "tzyx" and vol.time_interval_s == 60
    np.testing.assert_allclose(vol.frame(1).data, ri + 0.01, atol=5.1e-5)


def test_channel_of_lazy_timelapse_reads_one_frame(tmp_path, ri, monkeypatch):
    fl = {"gfp": np.ones((3, *ri.shape), np.uint8), "rfp": 2 * np.ones((3, *ri.shape),
                                                                        np.uint16)}
    path = write_tcf(tmp_path / "t.TCF", [ri] * 3, VOXEL, fl=fl)
    vol = read(path, modality="fl")
    rfp = vol.channel("rfp")
    assert rfp.axes == "tzyx" and not isinstance(rfp.data, np.ndarray)  # still lazy
    calls = []
    real = tcf_mod._read_node
    monkeypatch.setattr(tcf_mod, "_read_node", lambda node, *a: calls.append(node.name)
                        or real(node, *a))
    np.testing.assert_array_equal(rfp.frame(2).data, 2)
    assert len(calls) == 2  # both channels of frame 2 (one frame), not all frames
    with pytest.raises(InputError, match="no channel"):
        vol.channel("cfp")


def test_ldm_overlapping_tiles_with_a_gap_are_refused(tmp_path, ri):
    """Tiles whose total size exceeds the frame but that leave a hole are still refused."""
    path = _ldm_file(tmp_path / "ldm.TCF", ri, False)
    nx = ri.shape[2]
    with h5py.File(path, "r+") as f:
        t1 = f["Data/3D/000000/TILE_01"]
        t1.attrs["DataIndexOffsetPointX"] = _one(0)       # overlaps tile 0 ...
        t1.attrs["DataIndexLastPointX"] = _one(nx - 2)    # ... and leaves x = nx - 1 empty
    with pytest.raises(InputError, match=r"do not cover the frame \(\d+ of"):
        read(path)


def test_long_timelapse_times_and_exact_frame_times(tmp_path, ri, monkeypatch):
    path = write_tcf(tmp_path / "t.TCF", [ri] * 4, VOXEL, time_interval_s=30)
    assert read(path).metadata["times_s"] == pytest.approx([0, 30, 60, 90])
    monkeypatch.setattr(tcf_mod, "_MAX_TIMES_READ", 2)  # long series: times from interval
    with h5py.File(path, "r+") as f:
        f["Data/3D/000002"].attrs["Time"] = _one(61.5)
    assert read(path).metadata["times_s"] == pytest.approx([0, 30, 60, 90])
    assert tcf_mod.frame_times(path) == pytest.approx([0, 30, 61.5, 90])


def test_inconsistent_frame_is_reported_when_loaded(tmp_path, ri):
    path = write_tcf(tmp_path / "t.TCF", [ri] * 3, VOXEL, mip=False)
    with h5py.File(path, "r+") as f:
        del f["Data/3D/000001"]
        f["Data/3D/000001"] = np.full((2, 2, 2), 13500, np.uint16)
    vol = read(path)  # only the first and last frames are checked when opening
    np.testing.assert_allclose(vol.frame(2).data, ri, atol=5.1e-5)
    with pytest.raises(InputError, match="time point 1 has shape"):
        vol.frame(1)


def test_add_fl_channels_refuses_inconsistent_channels(tmp_path, ri):
    src = write_tcf(tmp_path / "a.TCF", ri, VOXEL)
    with pytest.raises(InputError, match="one \\(z, y, x\\) shape"):
        add_fl_channels(src, tmp_path / "b.TCF", {"a": np.zeros((2, 2, 2)),
                                                  "b": np.zeros((3, 2, 2))})
    with pytest.raises(InputError):
        add_fl_channels(src, tmp_path / "b.TCF", {})
    assert not (tmp_path / "b.TCF").exists()
    path = write_tcf(tmp_path / "c.TCF", ri, VOXEL, fl={"g": np.ones(ri.shape, np.uint8)},
                     fl_offset_z_um=np.array([0.4]))
    assert read(path, modality="fl").metadata["fl_offset_z_um"] == pytest.approx([0.4])
