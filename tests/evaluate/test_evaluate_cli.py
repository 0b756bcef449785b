"""``ri2fl evaluate`` end to end on tiny paired files with tiny untrained models."""

from __future__ import annotations

import pandas as pd
import pytest

from ri2fl.cli.main import main

TARGETS = ["membrane", "lipid_droplets", "nucleus"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    pytest.importorskip("torch")
    models = pytest.importorskip("ri2fl.models")
    infer = pytest.importorskip("ri2fl.infer")
    if not hasattr(infer, "predict_volume") or not hasattr(models, "save_checkpoint"):
        pytest.skip("ri2fl.infer.predict_volume / ri2fl.models.save_checkpoint not there yet")
    import torch

    root = tmp_path_factory.mktemp("models")
    paths = {}
    for kind in ("ri", "bf"):
        torch.manual_seed(0)
        config = {"model": {"features": 2, "depth": 2, "dropout": 0.2}, "targets": TARGETS,
                  "patch_size": [16, 48, 48], "input_kind": kind}
        paths[kind] = models.save_checkpoint(root / f"{kind}.pt", models.build(config), config)
    return paths


def test_evaluate_cli_single_model_with_uncertainty(tiny_models, paired_dataset, tmp_path,
                                                    capsys):
    out = tmp_path / "eval"
    rc = main(["evaluate", "--model", str(tiny_models["ri"]), "--data", str(paired_dataset),
               "-o", str(out), "--mc", "3", "--panels", "1", "--cell-types", "hela"])
    assert rc == 0
    table = pd.read_csv(out / "metrics.csv")
    assert {"fov", "cell_type", "target", "pcc", "ssim", "psnr", "mae",
            "fraction_matched", "uncertainty_spearman"} <= set(table.columns)
    assert len(table) == 2 * len(TARGETS)  # the 2 hela test FOVs
    assert table["psnr"].notna().all() and table["uncertainty_mean"].gt(0).all()
    assert (out / "summary.csv").exists() and (out / "report.html").exists()
    printed = capsys.readouterr().out
    assert "PCC" in printed
    # the structure test's pooled fraction, with its interval, on screen and in a table
    pooled = pd.read_csv(out / "structures_summary.csv")
    assert set(pooled["target"]) <= {"lipid_droplets", "nucleolus", "mitochondria"}
    assert (pooled["ci_low"] <= pooled["matched_within_0.5um"]).all()
    assert "matched within 0.5 µm (95 % CI" in printed


def test_evaluate_cli_compares_ri_and_bf_models(tiny_models, paired_dataset, tmp_path):
    out = tmp_path / "cmp"
    rc = main(["evaluate", "--model", str(tiny_models["ri"]), "--model", str(tiny_models["bf"]),
               "--data", str(paired_dataset / "manifest.csv"), "-o", str(out),
               "--cell-types", "hela", "--no-structures", "--panels", "0"])
    assert rc == 0
    tests = pd.read_csv(out / "ttests.csv")
    assert set(tests["model"]) == {"BF2FL"} and set(tests["target"]) == set(TARGETS)
    assert set(pd.read_csv(out / "metrics.csv")["model"]) == {"RI2FL", "BF2FL"}


def test_evaluate_cli_user_errors_are_one_line(paired_dataset, tmp_path, capsys):
    rc = main(["evaluate", "--data", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o"),
               "--model", str(tmp_path / "missing.pt")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
