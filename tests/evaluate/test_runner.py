"""The evaluation runner on tiny synthetic paired files with predictors of known quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ri2fl.errors import ConfigError, InputError
from ri2fl.evaluate import metrics
from ri2fl.evaluate.runner import (
    PredictionMaps,
    find_fovs,
    run_evaluation,
    summarise,
    t_tests,
    uncertainty_error_spearman,
)
from ri2fl.io.paired import PairedSample


def _noisy(sigma: float, seed: int = 0):
    """A predictor returning the truth plus Gaussian noise, with its noise as uncertainty."""
    rng = np.random.default_rng(seed)

    def predict(sample: PairedSample) -> PredictionMaps:
        fl, unc = {}, {}
        for name, true in sample.fl.items():
            # voxel-wise noise level varies, so the true uncertainty predicts the error
            level = sigma * (0.2 + rng.random(true.shape)).astype(np.float32)
            fl[name] = true + level * rng.standard_normal(true.shape).astype(np.float32)
            unc[name] = level
        return PredictionMaps(fl=fl, uncertainty_data=unc)

    return predict


def test_find_fovs_manifest_split_and_cell_types(paired_dataset):
    fovs = find_fovs(paired_dataset / "manifest.csv", split="test")
    assert [f.cell_type for f in fovs] == ["fibroblast", "fibroblast", "hela", "hela"]
    assert find_fovs(paired_dataset, split=None, cell_types=["hela"])[-1].split == "train"
    with pytest.raises(ConfigError, match="not in the data"):
        find_fovs(paired_dataset, cell_types=["astrocyte"])
    with pytest.raises(InputError, match="no such file"):
        find_fovs(paired_dataset / "missing.csv")


def test_find_fovs_plain_folder_reads_cell_type_from_files(paired_dataset, tmp_path):
    for f in paired_dataset.glob("*.h5"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    fovs = find_fovs(tmp_path, split="test")
    assert sorted({f.cell_type for f in fovs}) == ["fibroblast", "hela"]
    assert len(fovs) == 5  # no split in the files: nothing is filtered out


def test_run_evaluation_writes_metrics_summary_figures_report(paired_dataset, tmp_path):
    res = run_evaluation({"noisy": _noisy(0.05)}, paired_dataset, tmp_path / "ev", split="test")
    table = pd.read_csv(tmp_path / "ev" / "metrics.csv")
    assert {"model", "fov", "cell_type", "target", "pcc", "ssim", "psnr", "mae"} <= set(table)
    assert len(table) == 4 * 3  # 4 test FOVs x 3 targets
    # the PSNR of Gaussian noise with E[level²] known: 10 log10(1 / mse)
    lipid = table[table["target"] == "lipid_droplets"]
    assert lipid["fraction_matched"].min() == 1.0
    assert lipid["mean_distance_um"].max() < 0.1
    assert table["uncertainty_spearman"].min() > 0.3
    expected_mse = 0.05**2 * np.mean((0.2 + np.random.default_rng(1).random(10**6)) ** 2)
    assert table["psnr"].mean() == pytest.approx(10 * np.log10(1 / expected_mse), abs=0.2)
    summary = pd.read_csv(tmp_path / "ev" / "summary.csv")
    allrows = summary[summary["cell_type"] == "all"]
    assert set(allrows["target"]) == {"nucleus", "lipid_droplets", "membrane"}
    assert (allrows["n"] == 4).all()
    html = (tmp_path / "ev" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    panels = sorted(p.name for p in (tmp_path / "ev" / "figures").glob("panel_*.png"))
    assert panels == ["panel_noisy_fibroblast_000.png", "panel_noisy_hela_002.png"]
    assert res.tests is None


def test_comparison_t_tests_find_the_better_model(paired_dataset, tmp_path):
    res = run_evaluation({"good": _noisy(0.02, 1), "bad": _noisy(0.2, 2)}, paired_dataset,
                         tmp_path / "cmp", split=None, cell_types=["hela"], structures=False,
                         n_panels=0)
    tests = pd.read_csv(tmp_path / "cmp" / "ttests.csv")
    psnr = tests[tests["metric"] == "psnr"]
    assert len(psnr) == 3 and (psnr["model"] == "bad").all()
    assert (psnr["p"] < 0.01).all() and psnr["reference_better_p<0.01"].all()
    assert set(res.metrics["model"]) == {"good", "bad"}
    assert (tmp_path / "cmp" / "figures" / "comparison_by_model.png").exists()


def _missing_one_droplet(sample: PairedSample) -> PredictionMaps:
    """The truth, less the droplet 1.5 µm below the cell centre on y (one of three)."""
    fl = {name: true.copy() for name, true in sample.fl.items()}
    droplets = fl["lipid_droplets"]
    y_um = np.arange(droplets.shape[1]) * sample.voxel_size_um[1]
    y_centre = y_um[(droplets > 0).any(axis=(0, 2))].mean()
    droplets[:, y_um < y_centre - 0.75] = 0
    return PredictionMaps(fl=fl)


def test_comparison_reports_the_paired_difference_in_structures_found(paired_dataset,
                                                                      tmp_path):
    res = run_evaluation({"oracle": lambda s: PredictionMaps(fl=dict(s.fl)),
                          "missing": _missing_one_droplet}, paired_dataset, tmp_path / "cmp",
                         split="test", targets=["lipid_droplets"], n_panels=0)
    diff = pd.read_csv(tmp_path / "cmp" / "structures_differences.csv").iloc[0]
    assert (diff["model"], diff["reference"], diff["target"]) == ("missing", "oracle",
                                                                   "lipid_droplets")
    assert (diff["n_fovs"], diff["n_true"]) == (4, 12)  # 3 droplets in each of 4 FOVs
    assert diff["matched_reference"] == 1.0
    assert diff["difference"] == pytest.approx(-1 / 3)
    assert diff["ci_high"] < 0  # one droplet lost in every FOV: clear of zero
    assert len(res.structure_differences) == 1
    assert "paired bootstrap" in (tmp_path / "cmp" / "report.html").read_text()


def test_summarise_mean_sd_against_pandas():
    rng = np.random.default_rng(3)
    t = pd.DataFrame({"cell_type": np.repeat(["a", "b"], 5), "target": "nucleus",
                      "pcc": rng.random(10), "ssim": rng.random(10), "psnr": rng.random(10),
                      "mae": rng.random(10)})
    s = summarise(t).set_index("cell_type")
    assert s.loc["a", "pcc_mean"] == pytest.approx(t["pcc"][:5].mean())
    assert s.loc["b", "ssim_sd"] == pytest.approx(t["ssim"][5:].std(ddof=1))
    assert s.loc["all", "n"] == 10


def test_t_tests_match_scipy():
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(4)
    a, b = rng.normal(0.9, 0.02, 6), rng.normal(0.8, 0.05, 7)
    t = pd.DataFrame({"model": ["RI2FL"] * 6 + ["BF2FL"] * 7, "target": "actin",
                      "pcc": np.r_[a, b]})
    row = t_tests(t, "RI2FL", ["pcc"]).iloc[0]
    ref = ttest_ind(a, b)
    assert row["p"] == pytest.approx(ref.pvalue) and row["t"] == pytest.approx(ref.statistic)


def test_uncertainty_spearman_analytic():
    rng = np.random.default_rng(5)
    true = rng.random(5000)
    err = rng.random(5000)
    assert uncertainty_error_spearman(err, true, true + err) == pytest.approx(1.0)
    assert uncertainty_error_spearman(-err, true, true - err) == pytest.approx(-1.0)
    assert abs(uncertainty_error_spearman(rng.random(5000), true, true + err)) < 0.05


def test_perfect_prediction_scores(paired_dataset, tmp_path):
    def oracle(sample):
        return PredictionMaps(fl=dict(sample.fl))

    res = run_evaluation({"oracle": oracle}, paired_dataset, tmp_path / "o", n_panels=0)
    assert np.allclose(res.metrics["pcc"], 1.0) and np.allclose(res.metrics["ssim"], 1.0)
    assert np.isinf(res.metrics["psnr"]).all()
    assert metrics.mae(np.ones(3), np.ones(3)) == 0
    # every true droplet found again, at distance 0, in the per-structure tables
    found = pd.read_csv(tmp_path / "o" / "structures.csv")
    droplets = found[found["target"] == "lipid_droplets"]
    n_droplets = res.metrics.loc[res.metrics["target"] == "lipid_droplets", "n_true"].sum()
    assert len(droplets) == n_droplets > 0
    assert droplets["matched_0.5um"].all() and np.allclose(droplets["distance_um"], 0)
    by_size = pd.read_csv(tmp_path / "o" / "structures_by_size.csv")
    assert by_size.loc[by_size["target"] == "lipid_droplets", "n_true"].sum() == n_droplets
    assert (by_size["matched_0.5um"] == 1.0).all()
    pooled = pd.read_csv(tmp_path / "o" / "structures_summary.csv").set_index("target")
    assert pooled.loc["lipid_droplets", "n_true"] == n_droplets
    assert pooled.loc["lipid_droplets", "matched_within_0.5um"] == 1.0
    assert pooled.loc["lipid_droplets", "ci_high"] == 1.0


def test_per_structure_records_say_which_droplets_a_model_misses(paired_dataset, tmp_path):
    def no_droplets(sample):
        fl = dict(sample.fl)
        fl["lipid_droplets"] = np.zeros_like(fl["lipid_droplets"])
        return PredictionMaps(fl=fl)

    res = run_evaluation({"m": no_droplets}, paired_dataset, tmp_path / "m", n_panels=0)
    droplets = res.structures[res.structures["target"] == "lipid_droplets"]
    assert len(droplets) > 0 and not droplets["matched_0.5um"].any()
    assert droplets["distance_um"].isna().all()
    misses = pd.read_csv(tmp_path / "m" / "structures_misses.csv").set_index("target")
    assert misses.loc["lipid_droplets", "missed_not_painted"] == 1.0  # nothing painted there
    assert {"model", "fov", "cell_type", "volume_um3"} <= set(res.structures.columns)


def test_align_z_corrects_ri_fl_misregistration(paired_dataset, tmp_path):
    from ri2fl.io.paired import read_paired, write_paired
    from ri2fl.preprocess.register import shift_axial

    sample = read_paired(paired_dataset / "hela_002.h5")
    aligned = dict(sample.fl)
    sample.fl = {k: shift_axial(v, 2.0) for k, v in sample.fl.items()}  # FL 0.4 µm too deep
    write_paired(tmp_path / "shifted.h5", sample)

    def on_ri_grid(s):
        return PredictionMaps(fl=aligned)

    raw = run_evaluation({"m": on_ri_grid}, tmp_path, tmp_path / "raw", n_panels=0,
                         structures=False).metrics
    fixed = run_evaluation({"m": on_ri_grid}, tmp_path, tmp_path / "fixed", n_panels=0,
                           structures=False, align_z=True).metrics
    assert fixed["z_shift_vox"].iloc[0] == pytest.approx(-2.0, abs=0.3)
    assert (fixed["pcc"].to_numpy() > raw["pcc"].to_numpy() + 0.05).all()
    assert fixed["pcc"].min() > 0.9


def test_absent_target_has_no_pcc_and_stays_out_of_the_means():
    from ri2fl.evaluate.runner import score_target

    rng = np.random.default_rng(0)
    pred = rng.random((8, 16, 16)).astype(np.float32)
    absent = np.zeros_like(pred)  # e.g. the nucleoli of a mitotic cell
    present = np.zeros_like(pred)
    present[2:5, 4:9, 4:9] = 1.0
    assert np.isnan(score_target(absent, pred, (0.2, 0.15, 0.15), "membrane")["pcc"])
    row = score_target(present, present * 0.5, (0.2, 0.15, 0.15), "membrane")
    assert row["pcc"] == pytest.approx(1.0)
    table = pd.DataFrame({"cell_type": "a", "target": "membrane", "pcc": [np.nan, row["pcc"]],
                          "ssim": 0.5, "psnr": 20.0, "mae": 0.1})
    assert summarise(table).set_index("cell_type").loc["a", "pcc_mean"] == pytest.approx(1.0)


def test_several_models_read_each_fov_and_detect_its_structures_once(paired_dataset,
                                                                      monkeypatch):
    from ri2fl.evaluate import runner

    fovs = find_fovs(paired_dataset, split="test")

    def predictors():  # fresh ones: each draws its noise from its own generator
        return {"good": _noisy(0.02, 1), "bad": _noisy(0.2, 2)}

    alone = {name: runner.evaluate_fovs(fovs, predictor)
             for name, predictor in predictors().items()}
    reads, detections = [], []
    read, detect = runner.read_paired_any, runner.detect_structures
    monkeypatch.setattr(runner, "read_paired_any", lambda *a: reads.append(a[0]) or read(*a))
    monkeypatch.setattr(runner, "detect_structures",
                        lambda *a, **k: detections.append(1) or detect(*a, **k))
    together = runner.evaluate_models(fovs, predictors())
    assert len(reads) == len(fovs)
    # lipid droplets are the only target of these files with countable structures
    assert len(detections) == len(fovs)
    assert list(together["model"].unique()) == ["good", "bad"]  # one model after the other
    for name, table in alone.items():
        pd.testing.assert_frame_equal(
            together[together["model"] == name].drop(columns="model").reset_index(drop=True),
            table)
