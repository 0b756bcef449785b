"""A lab's own measurements: TCF with fluorescence and paired OME-Zarr, evaluated like .h5."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ri2fl.cli.main import main
from ri2fl.errors import InputError
from ri2fl.evaluate.runner import PredictionMaps, find_fovs, run_evaluation
from ri2fl.io import read_paired_any, write_ome_zarr
from ri2fl.io.tcf import write_tcf


@pytest.fixture(scope="module")
def lab_folder(tmp_path_factory, sample_factory):
    """One TCF whose 8-bit fluorescence covers slices 2..9 of 12, and one paired OME-Zarr."""
    root = tmp_path_factory.mktemp("lab")
    a, b = sample_factory(0, "hela"), sample_factory(1, "hela")
    vs = a.voxel_size_um
    fl = {"CH0": np.round(255 * a.fl["nucleus"][2:10]).astype(np.uint8),
          "CH1": np.round(255 * a.fl["lipid_droplets"][2:10]).astype(np.uint8)}
    write_tcf(root / "dish1_cell1.TCF", a.ri, vs, fl=fl, fl_offset_z_um=2 * vs[0])
    write_ome_zarr(root / "dish1_cell2.ome.zarr",
                   np.stack([b.ri, b.fl["nucleus"], b.fl["membrane"]]), vs,
                   channel_names=["ri", "nucleus", "membrane"])
    return root, a, b


def test_tcf_is_cropped_to_its_registered_fluorescence_and_scaled(lab_folder):
    root, a, _ = lab_folder
    s = read_paired_any(root / "dish1_cell1.TCF", ["nucleus", "lipid_droplets", "actin"],
                        {"nucleus": "CH0", "lipid_droplets": "CH1"}, fl_scale=255)
    assert sorted(s.fl) == ["lipid_droplets", "nucleus"]  # no actin channel: left out
    assert s.ri.shape == (8, 40, 40) and s.voxel_size_um == pytest.approx(a.voxel_size_um)
    np.testing.assert_allclose(s.ri, a.ri[2:10], atol=1e-4)
    np.testing.assert_allclose(s.fl["nucleus"], a.fl["nucleus"][2:10], atol=0.5 / 255)


def test_paired_ome_zarr_reads_its_channels(lab_folder):
    root, _, b = lab_folder
    s = read_paired_any(root / "dish1_cell2.ome.zarr", ["nucleus", "membrane", "actin"])
    assert sorted(s.fl) == ["membrane", "nucleus"]
    np.testing.assert_array_equal(s.fl["nucleus"], b.fl["nucleus"])
    np.testing.assert_array_equal(s.ri, b.ri)


def test_folder_of_own_files_is_evaluated_per_file(lab_folder, tmp_path):
    root, a, b = lab_folder
    fovs = find_fovs(root)
    assert [f.fov for f in fovs] == ["dish1_cell1", "dish1_cell2"]
    assert {f.cell_type for f in fovs} == {"unknown"}

    # the fluorescence the files were written from, on the slices the TCF's covers: a wrong
    # channel, a wrong crop or a misplaced offset would not correlate with it
    truth = {8: {t: a.fl[t][2:10] for t in ("nucleus", "lipid_droplets")},
             12: {t: b.fl[t] for t in ("nucleus", "membrane")}}

    def written(sample):
        return PredictionMaps(fl=truth[sample.ri.shape[0]])

    # the TCF names its channels CH0/CH1, the OME-Zarr like the targets: one map serves both
    res = run_evaluation({"written": written}, root, tmp_path / "o", split=None, n_panels=0,
                         channel_map={"nucleus": "CH0", "lipid_droplets": "CH1"})
    got = res.metrics.set_index(["fov", "target"])["pcc"]
    assert sorted(got.index) == [("dish1_cell1", "lipid_droplets"), ("dish1_cell1", "nucleus"),
                                 ("dish1_cell2", "membrane"), ("dish1_cell2", "nucleus")]
    assert (got > 0.999).all()  # 8-bit counts: equal up to rounding


def test_evaluate_cli_on_tcf_files_listed_by_a_manifest(lab_folder, tmp_path, capsys):
    root = lab_folder[0]
    manifest = root / "tcf_only.csv"
    manifest.write_text("path,cell_type,split\ndish1_cell1.TCF,hela,test\n")
    out = tmp_path / "eval"
    rc = main(["evaluate", "--data", str(manifest), "-o", str(out), "--panels", "1",
               "--channel-map", "nucleus=CH0", "lipid_droplets=CH1", "--fl-scale", "255"])
    assert rc == 0
    table = pd.read_csv(out / "metrics.csv")
    assert set(zip(table["fov"], table["cell_type"], table["target"], strict=True)) == {
        ("dish1_cell1", "hela", "nucleus"), ("dish1_cell1", "hela", "lipid_droplets")}
    # 8-bit counts / 255 put the truth on the model's [0, 1] scale (unscaled counts up to 204
    # would give errors of tens)
    assert table["pcc"].notna().all() and table["mae"].lt(0.5).all()
    assert "lipid_droplets" in capsys.readouterr().out


@pytest.mark.parametrize("argv, where", [
    (["--channel-map", "nucleus"], "--channel-map"),
    (["--channel-map", "golgi=CH3"], "--channel-map"),
    (["--fl-scale", "0"], "--fl-scale"),
])
def test_evaluate_cli_bad_own_data_options_are_one_line(lab_folder, tmp_path, capsys, argv,
                                                         where):
    root, _, _ = lab_folder
    rc = main(["evaluate", "--data", str(root), "-o", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and where in err[0]


def test_fluorescence_outside_the_ri_stack_is_a_clear_error(tmp_path, sample_factory):
    a = sample_factory(0, "hela")
    fl = {"CH0": np.ones((4, 40, 40), np.uint8)}
    path = write_tcf(tmp_path / "off.TCF", a.ri, a.voxel_size_um, fl=fl, fl_offset_z_um=50.0)
    with pytest.raises(InputError, match="no whole z-slice"):
        read_paired_any(path, ["nucleus"], {"nucleus": "CH0"})
