"""Round trips through HDF5, OME-Zarr (NGFF 0.4 / 0.5), OME-TIFF, TIFF and .npy."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import tifffile

from ri2fl.errors import InputError
from ri2fl.io import create_ome_zarr, read, write_ome_tiff, write_ome_zarr, write_paired
from ri2fl.io.paired import PairedSample

VOXEL = (0.2, 0.15, 0.12)


@pytest.fixture
def ri(rng):
    return (1.337 + 0.05 * rng.random((5, 6, 7))).astype(np.float32)


def test_hl60_reads_with_voxel_size_and_medium(hl60_path):
    vol = read(hl60_path)
    assert vol.axes == "zyx" and vol.shape == (140, 140, 140)
    assert vol.voxel_size_um == pytest.approx((0.139, 0.139, 0.139))
    assert vol.medium_index == pytest.approx(1.335)
    assert vol.data.dtype == np.float32
    assert 1.32 < vol.data.min() < 1.335 < vol.data.max() < 1.37


def test_hdf5_paired_file_reads_ri_and_fl(tmp_path, ri):
    fl = {"membrane": ri * 0, "nucleus": ri - 1.3}
    path = write_paired(tmp_path / "p.h5", PairedSample(ri=ri, fl=fl, voxel_size_um=VOXEL,
                                                        medium_index=1.333))
    vol = read(path)
    np.testing.assert_array_equal(vol.data, ri)
    assert vol.voxel_size_um == VOXEL and vol.medium_index == pytest.approx(1.333)
    assert vol.metadata["fl_channels"] == ["membrane", "nucleus"]
    fl_vol = read(path, modality="fl")
    assert fl_vol.axes == "czyx" and fl_vol.channel_names == ["membrane", "nucleus"]
    np.testing.assert_allclose(fl_vol.channel("nucleus").data, ri - 1.3)


def test_hdf5_without_voxel_size_asks_for_it(tmp_path, ri):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["ri"] = ri
    with pytest.raises(InputError, match="voxel"):
        read(tmp_path / "a.h5")
    assert read(tmp_path / "a.h5", voxel_size_um=0.1).voxel_size_um == (0.1, 0.1, 0.1)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_round_trip_keeps_data_voxel_size_and_names(tmp_path, ri, version):
    data = np.stack([ri, 2 * ri])
    path = write_ome_zarr(tmp_path / "x.ome.zarr", data, VOXEL, channel_names=["a", "b"],
                          chunks=(1, 2, 3, 4), ngff_version=version, medium_index=1.335)
    vol = read(path)
    assert vol.axes == "czyx" and vol.channel_names == ["a", "b"]
    assert vol.voxel_size_um == pytest.approx(VOXEL)
    assert vol.medium_index == pytest.approx(1.335)
    np.testing.assert_array_equal(vol.data, data)
    meta = "zarr.json" if version == "0.5" else ".zattrs"
    attrs = json.loads((path / meta).read_text())
    attrs = attrs.get("attributes", attrs)
    ms = (attrs["ome"] if version == "0.5" else attrs)["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert ms["axes"][1]["unit"] == "micrometer"


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_is_valid_ngff_for_reference_reader(tmp_path, ri, version):
    """ome-zarr-py (what napari-ome-zarr uses) sees our scale and channel names."""
    reader_mod = pytest.importorskip("ome_zarr.reader")
    io_mod = pytest.importorskip("ome_zarr.io")
    path = write_ome_zarr(tmp_path / "cell.1.ome.zarr", np.stack([ri, ri]), VOXEL,
                          channel_names=["membrane", "nucleus"], ngff_version=version)
    nodes = list(reader_mod.Reader(io_mod.parse_url(str(path)))())
    meta = nodes[0].metadata
    assert meta["name"] == "cell.1"
    assert meta["channel_names"] == ["membrane", "nucleus"]
    assert meta["coordinateTransformations"][0][0]["scale"] == pytest.approx([1.0, *VOXEL])


def test_ome_zarr_multiframe_is_lazy(tmp_path, ri):
    data = np.stack([ri, ri + 0.01, ri + 0.02])
    path = write_ome_zarr(tmp_path / "t.ome.zarr", data, VOXEL, axes="tzyx",
                          time_interval_s=30.0)
    vol = read(path)
    assert vol.axes == "tzyx" and vol.time_points == 3 and vol.time_interval_s == 30.0
    assert not isinstance(vol.data, np.ndarray)
    np.testing.assert_allclose(vol.frame(2).data, ri + 0.02)
    np.testing.assert_allclose(read(path, frame=1).data, ri + 0.01)


def test_streaming_writer_appears_only_when_finalized(tmp_path, ri):
    out_path = tmp_path / "s.ome.zarr"
    out = create_ome_zarr(out_path, (2, *ri.shape), VOXEL, channel_names=["a", "b"])
    out[0, :2] = ri[:2]
    out[0, 2:] = ri[2:]
    out[1] = ri
    assert not out_path.exists()
    out.finalize()
    np.testing.assert_array_equal(read(out_path).data, np.stack([ri, ri]))


def test_streaming_writer_leaves_nothing_on_error(tmp_path, ri):
    out_path = tmp_path / "s.ome.zarr"
    with pytest.raises(RuntimeError), create_ome_zarr(out_path, ri.shape, VOXEL) as out:
        out[:2] = ri[:2]
        raise RuntimeError("crash in the middle")
    assert list(tmp_path.iterdir()) == []


def test_ome_tiff_round_trip(tmp_path, ri):
    data = np.stack([ri, ri * 0.5])
    path = write_ome_tiff(tmp_path / "x.ome.tif", data, VOXEL, ["membrane", "actin"])
    vol = read(path)
    assert vol.axes == "czyx" and vol.channel_names == ["membrane", "actin"]
    assert vol.voxel_size_um == pytest.approx(VOXEL)
    np.testing.assert_array_equal(vol.data, data)


def test_imagej_tiff_voxel_size(tmp_path, ri):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, ri, imagej=True, resolution=(1 / 0.15, 1 / 0.12),
                     metadata={"spacing": 0.2, "unit": "um", "axes": "ZYX"})
    vol = read(path)
    assert vol.voxel_size_um == pytest.approx((0.2, 0.12, 0.15), rel=1e-4)
    np.testing.assert_array_equal(vol.data, ri)


def test_plain_tiff_needs_voxel_size(tmp_path, ri):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, ri)
    with pytest.raises(InputError, match="voxel-size"):
        read(path)
    np.testing.assert_array_equal(read(path, voxel_size_um=VOXEL).data, ri)


def test_npy_needs_voxel_size_and_reads_frames(tmp_path, ri):
    np.save(tmp_path / "a.npy", np.stack([ri, ri + 0.01]))
    with pytest.raises(InputError, match="voxel"):
        read(tmp_path / "a.npy")
    vol = read(tmp_path / "a.npy", voxel_size_um=VOXEL)
    assert vol.axes == "tzyx" and vol.time_points == 2
    np.testing.assert_allclose(read(tmp_path / "a.npy", voxel_size_um=VOXEL, frame=1).data,
                               ri + 0.01)


def test_voxel_size_option_overrides_metadata(tmp_path, ri):
    path = write_ome_zarr(tmp_path / "x.ome.zarr", ri, VOXEL)
    assert read(path, voxel_size_um=(1, 2, 3)).voxel_size_um == (1.0, 2.0, 3.0)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89HDF\r\n\x1a\nxx"])
@pytest.mark.parametrize("suffix", [".h5", ".tif", ".npy", ".TCF", ".dat"])
def test_garbage_files_give_input_error(tmp_path, content, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(InputError):
        read(path, voxel_size_um=0.1)


def test_missing_path_and_bad_modality(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read(tmp_path / "nothing.TCF")
    with pytest.raises(InputError, match="modality"):
        read(tmp_path / "nothing.TCF", modality="xray")


def test_unscaled_ri_and_nan_are_refused(tmp_path, ri):
    np.save(tmp_path / "scaled.npy", (ri * 1e4).astype(np.uint16))
    with pytest.raises(InputError, match="refractive"):
        read(tmp_path / "scaled.npy", voxel_size_um=0.1)
    bad = ri.copy()
    bad[1, 2, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(InputError, match="NaN"):
        read(tmp_path / "nan.npy", voxel_size_um=0.1)


def test_2d_array_is_refused(tmp_path):
    np.save(tmp_path / "img.npy", np.ones((4, 4), np.float32) * 1.34)
    with pytest.raises(InputError, match="3D"):
        read(tmp_path / "img.npy", voxel_size_um=0.1)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("axes", ["zyx", "czyx", "tczyx"])
def test_ome_zarr_validates_against_ngff_models(tmp_path, ri, version, axes):
    """The metadata passes the pydantic models of the NGFF specification (ome-zarr-models)."""
    models = pytest.importorskip(f"ome_zarr_models.v0{version[-1]}.image")
    import zarr
    data = ri.reshape((1,) * (len(axes) - 3) + ri.shape)
    path = write_ome_zarr(tmp_path / "x.ome.zarr", data, VOXEL, axes=axes,
                          ngff_version=version)
    image = models.Image.from_zarr(zarr.open_group(path, mode="r"))
    ms = (image.attributes.ome if version == "0.5" else image.attributes).multiscales[0]
    assert [a.name for a in ms.axes] == list(axes)
    assert list(ms.datasets[0].coordinateTransformations[0].scale[-3:]) == pytest.approx(VOXEL)


def test_hdf5_any_dataset_by_name(tmp_path, ri):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["ri"] = ri
        f["predictions/membrane"] = ri * 100  # not RI: no RI range check
        f.attrs["voxel_size_um"] = [0.2, 0.15, 0.12]
    vol = read(tmp_path / "a.h5", dataset="predictions/membrane")
    assert vol.channel_names == ["membrane"] and vol.voxel_size_um == VOXEL
    np.testing.assert_allclose(vol.data, ri * 100)
    with pytest.raises(InputError, match="no dataset 'nope'"):
        read(tmp_path / "a.h5", dataset="nope")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_pyramid_levels(tmp_path, rng, version):
    data = rng.random((2, 3, 8, 10)).astype(np.float32)
    labels = rng.integers(0, 5, (3, 8, 10)).astype(np.int32)
    path = write_ome_zarr(tmp_path / "p.ome.zarr", data, VOXEL, levels=3,
                          ngff_version=version)
    vol = read(path)
    assert vol.metadata["levels"] == ["0", "1", "2"]
    np.testing.assert_array_equal(vol.data, data)
    low = read(path, dataset="1")
    assert low.shape == (2, 3, 4, 5)
    assert low.voxel_size_um == pytest.approx((0.2, 0.3, 0.24))
    np.testing.assert_allclose(low.data[1, 2, 1, 3], data[1, 2, 2:4, 6:8].mean(), rtol=1e-6)
    assert read(path, dataset="2").shape == (2, 3, 2, 2)
    lab = write_ome_zarr(tmp_path / "l.ome.zarr", labels, VOXEL, levels=2,
                         channel_names=["cells"], ngff_version=version)
    np.testing.assert_array_equal(read(lab, dataset="1", modality="fl").data,
                                  labels[:, ::2, ::2])


@pytest.mark.parametrize("fmt", ["zarr", "tiff", "h5", "npy"])
def test_frame_beyond_a_single_time_point_is_refused(tmp_path, ri, fmt):
    if fmt == "zarr":
        path, opts = write_ome_zarr(tmp_path / "a.ome.zarr", ri, VOXEL), {}
    elif fmt == "tiff":
        path, opts = write_ome_tiff(tmp_path / "a.ome.tif", ri, VOXEL), {}
    elif fmt == "h5":
        path = write_paired(tmp_path / "a.h5", PairedSample(ri=ri, fl={}, voxel_size_um=VOXEL))
        opts = {}
    else:
        np.save(tmp_path / "a.npy", ri)
        path, opts = tmp_path / "a.npy", {"voxel_size_um": VOXEL}
    np.testing.assert_array_equal(read(path, frame=0, **opts).data, ri)
    with pytest.raises(InputError, match="one time point"):
        read(path, frame=3, **opts)


def test_bioformats2raw_layout_reads_first_image(tmp_path, ri):
    """Fiji / bioformats2raw exports put the image in the group '0' of the root store."""
    import zarr
    root = tmp_path / "export.ome.zarr"
    zarr.open_group(root, mode="w", zarr_format=2).attrs["bioformats2raw.layout"] = 3
    write_ome_zarr(root / "0", ri, VOXEL, ngff_version="0.4")
    vol = read(root)
    assert vol.voxel_size_um == pytest.approx(VOXEL)
    np.testing.assert_array_equal(vol.data, ri)


def test_volume_repr_is_a_summary(hl60_path):
    text = repr(read(hl60_path))
    assert text.startswith("Volume(axes='zyx', shape=(140, 140, 140)")
    assert "0.139" in text and "1.335" in text and len(text) < 200


def test_cf_packed_hdf5_reads_as_refractive_index(tmp_path):
    # the bundled HL60 copy is stored this way: uint16 * scale_factor + add_offset
    ri = np.linspace(1.33, 1.40, 8 * 8 * 8, dtype=np.float32).reshape(8, 8, 8)
    path = tmp_path / "packed.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("ri", data=np.round((ri - 1.32) / 1e-5).astype(np.uint16))
        ds.attrs.update(scale_factor=1e-5, add_offset=1.32, voxel_size_um=0.2)
    vol = read(path)
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data, ri, atol=6e-6)
    with h5py.File(path, "a") as f:
        f["ri"].attrs["scale_factor"] = 0.0
    with pytest.raises(InputError, match="scale_factor"):
        read(path)


def test_bundled_hl60_is_the_shared_cell_to_within_its_packing():
    from ri2fl.demo import HL60_BUNDLED, HL60_SHARED

    bundled = read(HL60_BUNDLED)
    assert bundled.voxel_size_um == pytest.approx((0.139,) * 3) and bundled.medium_index == 1.335
    if HL60_SHARED.exists():
        np.testing.assert_allclose(bundled.data, read(HL60_SHARED).data, atol=6e-6)
    else:
        assert 1.33 < float(np.median(bundled.data)) < 1.40
