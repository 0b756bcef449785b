"""``ri2fl info`` and ``ri2fl convert`` as a user runs them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ri2fl.cli.main import main
from ri2fl.io import read


def test_info_json_on_hl60(hl60_path, capsys):
    assert main(["info", str(hl60_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [140, 140, 140]
    assert info["voxel_size_um"] == pytest.approx([0.139] * 3)
    assert info["medium_index"] == pytest.approx(1.335)
    assert 1.32 < info["ri_min"] < info["ri_max"] < 1.37
    assert info["time_points"] == 1 and info["fl_channels"] == 0
    assert info["channel_names"] == ["ri"] and info["format"] == "hdf5"


def test_info_bad_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "cell.TCF"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "cell.TCF" in err


def test_convert_hl60_resampled_to_ome_zarr(hl60_path, tmp_path, capsys):
    out = tmp_path / "hl60.ome.zarr"
    assert main(["convert", str(hl60_path), str(out), "--resample"]) == 0
    vol = read(out)
    assert vol.spatial_shape == (97, 130, 130)
    assert vol.voxel_size_um == pytest.approx((0.2, 0.15, 0.15), rel=0.01)
    assert vol.medium_index == pytest.approx(1.335)
    assert vol.data.mean() == pytest.approx(read(hl60_path).data.mean(), abs=1e-4)


def test_convert_npy_to_ome_tiff_with_voxel_size(tmp_path):
    ri = np.full((4, 5, 6), 1.34, np.float32)
    np.save(tmp_path / "a.npy", ri)
    out = tmp_path / "a.ome.tif"
    assert main(["convert", str(tmp_path / "a.npy"), str(out),
                 "--voxel-size", "0.3", "0.1", "0.1"]) == 0
    vol = read(out)
    assert vol.voxel_size_um == pytest.approx((0.3, 0.1, 0.1))
    np.testing.assert_array_equal(vol.data, ri)


def test_convert_failure_leaves_no_output(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.full((4, 5, 6), 1.34, np.float32))
    out = tmp_path / "a.ome.zarr"
    assert main(["convert", str(tmp_path / "a.npy"), str(out)]) == 2
    assert "voxel" in capsys.readouterr().err
    assert not out.exists()
    assert main(["convert", str(tmp_path / "a.npy"), str(tmp_path / "a.png"),
                 "--voxel-size", "1", "1", "1"]) == 2


def test_help_shows_examples(capsys):
    for cmd in ("info", "convert"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "Examples:" in capsys.readouterr().out


def test_convert_timelapse_frame_and_all_frames_to_ome_tiff(tmp_path):
    from ri2fl.io.tcf import write_tcf
    ri = np.full((3, 4, 5), 1.34, np.float32)
    src = write_tcf(tmp_path / "t.TCF", [ri, ri + 0.01, ri + 0.02], (0.2, 0.15, 0.15))
    assert main(["convert", str(src), str(tmp_path / "f2.ome.tif"), "--frame", "2"]) == 0
    one = read(tmp_path / "f2.ome.tif")
    assert one.axes == "zyx"
    np.testing.assert_allclose(one.data, ri + 0.02, atol=1e-4)
    assert main(["convert", str(src), str(tmp_path / "all.ome.tif")]) == 0
    lapse = read(tmp_path / "all.ome.tif")
    assert lapse.axes == "tzyx" and lapse.time_points == 3
    np.testing.assert_allclose(lapse.frame(1).data, ri + 0.01, atol=1e-4)


def test_info_frame_out_of_range(tmp_path, capsys):
    from ri2fl.io.tcf import write_tcf
    ri = np.full((3, 4, 5), 1.34, np.float32)
    src = write_tcf(tmp_path / "t.TCF", [ri, ri], (0.2, 0.15, 0.15))
    assert main(["info", str(src), "--frame", "5"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_convert_hl60_to_tcf_and_back(hl60_path, tmp_path):
    out = tmp_path / "hl60.TCF"
    assert main(["convert", str(hl60_path), str(out), "--tcf-layout", "ldm"]) == 0
    vol = read(out)
    assert vol.metadata["format"] == "tcf" and vol.metadata["layout"] == "ldm"
    assert vol.voxel_size_um == pytest.approx((0.139,) * 3)
    assert vol.medium_index == pytest.approx(1.335)
    np.testing.assert_allclose(vol.data, read(hl60_path).data, atol=5.1e-5)  # x 1e4 storage
    assert main(["convert", str(hl60_path), str(tmp_path / "x.png")]) == 2


@pytest.mark.parametrize("fmt", ["tcf-legacy", "tcf", "tcf-ldm", "hdf5", "ome-tiff",
                                 "imagej-tiff", "zarr-0.4", "zarr-0.5", "npy"])
def test_info_prints_voxel_size_and_ri_range_for_every_format(tmp_path, fmt, capsys):
    import tifffile

    from ri2fl.io import write_ome_tiff, write_ome_zarr, write_paired
    from ri2fl.io.paired import PairedSample
    from ri2fl.io.tcf import write_tcf

    voxel = (0.25, 0.125, 0.1)
    ri = np.linspace(1.3371, 1.3893, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    extra: list[str] = []
    if fmt.startswith("tcf"):
        path = write_tcf(tmp_path / "a.TCF", ri, voxel, version="1.2" if "legacy" in fmt
                         else "1.4", layout="ldm" if "ldm" in fmt else "dataset")
    elif fmt == "hdf5":
        path = write_paired(tmp_path / "a.h5", PairedSample(ri=ri, fl={}, voxel_size_um=voxel))
    elif fmt == "ome-tiff":
        path = write_ome_tiff(tmp_path / "a.ome.tif", ri, voxel)
    elif fmt == "imagej-tiff":
        path = tmp_path / "a.tif"
        tifffile.imwrite(path, ri, imagej=True, resolution=(1 / voxel[2], 1 / voxel[1]),
                         metadata={"spacing": voxel[0], "unit": "um", "axes": "ZYX"})
    elif fmt.startswith("zarr"):
        path = write_ome_zarr(tmp_path / "a.ome.zarr", ri, voxel, ngff_version=fmt[-3:])
    else:
        np.save(tmp_path / "a.npy", ri)
        path, extra = tmp_path / "a.npy", ["--voxel-size", *map(str, voxel)]
    assert main(["info", str(path), "--json", *extra]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["voxel_size_um"] == pytest.approx(voxel, rel=1e-5)
    assert info["shape"] == [4, 5, 6]
    assert info["ri_min"] == pytest.approx(1.3371, abs=6e-5)
    assert info["ri_max"] == pytest.approx(1.3893, abs=6e-5)
