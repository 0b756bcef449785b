"""Issue #30 item 6: scripts/adaptation_curve.py's plan, manifests, commands and tables."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ri2fl.constants import TARGETS
from ri2fl.data.dataset import list_samples
from ri2fl.errors import ConfigError
from ri2fl.evaluate.ood import optics_outside_training
from ri2fl.train.config import load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def script(load_script):
    return load_script("adaptation_curve")


def test_plan_lab_is_a_new_out_of_domain_set(script, tmp_path):
    plan = script.plan_lab(tmp_path)
    train = [s for s, _ in plan.fields if s.split == "train"]
    test = [s for s, _ in plan.fields if s.split == "test"]
    assert [s.seed for s in train] == list(range(950_000, 950_008))
    assert [s.seed for s in test] == list(range(960_000, 960_004))
    assert all(s.physics == "none" and s.shape == (32, 192, 192) for s, _ in plan.fields)
    assert plan.sizes == (1, 2, 4, 8)
    assert optics_outside_training(script.LAB_OPTICS) == ["na 0.6 < 0.7"]
    with pytest.raises(ConfigError, match="sizes"):
        script.plan_lab(tmp_path, n_train=4)
    with pytest.raises(ConfigError, match="inside the training"):
        script.plan_lab(tmp_path, optics={**script.LAB_OPTICS, "na": 1.0, "na_ill": 0.8})


def test_one_volume_trains_and_validates_on_itself(script, tmp_path):
    plan = script.plan_lab(tmp_path, n_train=2, n_test=1, sizes=[1, 2])
    for n in plan.sizes:
        manifest = script.write_size_manifest(plan, n)
        train, val = list_samples(manifest, "train"), list_samples(manifest, "val")
        assert [p.name for p, _ in train] == [p.name for p, _ in val] == plan.train_files()[:n]
        assert all(p.parent == plan.data for p, _ in train)


def test_train_command_is_the_users_ri2fl_train(script, tmp_path):
    plan = script.plan_lab(tmp_path)
    cmd = script.train_command(plan, 4, minutes=0.5, threads=2, bf16=True,
                               extra=["--steps-per-epoch", "1"])
    assert cmd[:4] == [sys.executable, "-m", "ri2fl.cli", "train"]
    assert cmd[4] == str(script.CONFIG)
    options = dict(zip(cmd[5::2], cmd[6::2]))
    assert options["--finetune"] == "default" and options["--max-minutes"] == "0.5"
    assert options["--data"] == str(tmp_path / "lab" / "manifest_n4.csv")
    assert options["--out"] == str(tmp_path / "finetune_n4")
    assert "--bf16" in cmd and cmd[-2:] == ["--steps-per-epoch", "1"]


def test_finetune_config_keeps_the_shipped_networks_training(script):
    cfg = load_config(script.CONFIG, finetune="default")
    assert cfg["targets"] == list(TARGETS)
    assert len(cfg["loss_options"]["channel_weights"]) == len(TARGETS)
    assert cfg["tile_size"] == [64, 256, 256] and cfg["data"]["empty_p"] == 0.15


def test_run_timed_times_a_child_and_reports_a_failure(script, tmp_path):
    timing = script.run_timed([sys.executable, "-c", "sum(range(10**6))"], tmp_path / "ok.log")
    assert timing["cpu_minutes"] > 0 and timing["wall_minutes"] > 0
    with pytest.raises(RuntimeError, match="boom"):
        script.run_timed([sys.executable, "-c", "raise SystemExit('boom')"],
                         tmp_path / "bad.log")


def test_curve_table_and_markdown(script):
    rows = [{"n": n, "model": f"n={n}", "fov": f"f{i}", "target": t,
             "pcc": 0.5 + 0.05 * n + 0.01 * i if t != "actin" or i else np.nan}
            for n in (0, 1, 2) for i in range(2) for t in ("nucleus", "actin")]
    table = script.curve_table(pd.DataFrame(rows), {1: {"wall_minutes": 10.5,
                                                        "cpu_minutes": 20.1}, 2: {}})
    assert list(table["n"]) == [0, 1, 2]
    assert list(table.columns[:4]) == ["n", "n_test_fields", "wall_minutes", "cpu_minutes"]
    assert list(table.columns[4:]) == ["pcc_actin", "pcc_nucleus", "pcc_mean"]
    first = table.iloc[0]
    assert first["n_test_fields"] == 2 and first["cpu_minutes"] == 0
    assert first["pcc_nucleus"] == pytest.approx(0.505)
    assert first["pcc_actin"] == pytest.approx(0.51)  # the NaN field is left out
    assert first["pcc_mean"] == pytest.approx((0.505 + 0.51) / 2)
    text = script.curve_markdown(table, "note")
    assert text.startswith("note\n\n| paired volumes | CPU min | wall min | actin | nucleus |")
    assert "| 0 (shipped model) | 0.0 | 0.0 | 0.510 | 0.505 | 0.508 |" in text
    assert "| 1 | 20.1 | 10.5 |" in text


def test_plan_option_prints_and_runs_nothing(script, tmp_path, capsys):
    assert script.main([str(tmp_path / "adapt"), "--plan", "--sizes", "1", "2"]) == 0
    out = capsys.readouterr().out
    assert "n = 1:" in out and "n = 2:" in out and "n = 4:" not in out
    assert not (tmp_path / "adapt").exists()
