"""Issue #30 item 5: the uncertainty study off-domain (ri2fl.evaluate.ood, eval_ood.py)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from ri2fl.evaluate.ood import (
    IN_DOMAIN,
    IN_DOMAIN_SEED,
    field_uncertainty,
    in_domain_seeds,
    rank_correlation,
    read_ood_config,
    seed_conflicts,
    uncertainty_table,
)
from ri2fl.evaluate.runner import PredictionMaps

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ood_eval.yaml"
SHAPE = (8, 24, 24)


def _field(rng, scale, part, fov, tracks=True):
    """A prediction whose error has s.d. ``scale`` x a spatial pattern; the uncertainty map is
    that pattern (``tracks``) or unrelated to it."""
    pattern = rng.uniform(0.2, 1.0, SHAPE).astype(np.float32)
    true = rng.uniform(0, 1, SHAPE).astype(np.float32)
    pred = true + scale * pattern * rng.standard_normal(SHAPE).astype(np.float32)
    unc = scale * (pattern if tracks else rng.uniform(0.2, 1.0, SHAPE).astype(np.float32))
    cell = np.zeros(SHAPE, bool)
    cell[2:6, 4:20, 4:20] = True
    unc_out = unc.copy()
    unc_out[~cell] = 100.0  # outside the cells: must not count
    return field_uncertainty(part, fov, "nucleus", unc_out, cell, true, pred,
                             {"data": unc_out, "model": np.zeros(SHAPE)}, max_voxels=500,
                             warned=part != IN_DOMAIN)


def test_uncertainty_that_tracks_the_error_correlates_and_rises_off_domain():
    rng = np.random.default_rng(0)
    fields = [_field(rng, 0.05, IN_DOMAIN, f"in{i}") for i in range(3)]
    fields += [_field(rng, 0.1, "physical", f"ph{i}") for i in range(3)]
    fields += [_field(rng, 0.1, "textbook", f"tb{i}", tracks=False) for i in range(3)]
    one = fields[0]
    assert one.n_voxels == 4 * 16 * 16 and one.uncertainty_sample.size == 500
    assert one.uncertainty_mean < 1  # the 100s outside the cell are left out
    assert one.uncertainty_data_mean == pytest.approx(one.uncertainty_mean)
    assert one.uncertainty_model_mean == 0
    table = uncertainty_table(fields).set_index("part")
    assert list(table.index) == [IN_DOMAIN, "physical", "textbook"]
    assert (table["n_fields"] == 3).all() and (table["n_sampled"] == 1500).all()
    assert table.loc[IN_DOMAIN, "ratio_to_reference"] == pytest.approx(1.0)
    assert table.loc["physical", "ratio_to_reference"] == pytest.approx(2.0, rel=0.05)
    assert table.loc["physical", "error_mean"] > 1.8 * table.loc[IN_DOMAIN, "error_mean"]
    # tracked: clearly positive, within and across fields; untracked: near zero
    assert table.loc["physical", "spearman"] > 0.3
    assert table.loc["physical", "spearman_fields_mean"] > 0.3
    assert abs(table.loc["textbook", "spearman"]) < 0.1
    assert table.loc[IN_DOMAIN, "fraction_warned"] == 0
    assert table.loc["physical", "fraction_warned"] == 1
    # the pooled Spearman over parts is scipy's on the concatenated samples
    sample = np.concatenate([f.uncertainty_sample for f in fields[3:6]])
    errors = np.concatenate([f.error_sample for f in fields[3:6]])
    assert table.loc["physical", "spearman"] == pytest.approx(rank_correlation(sample, errors))


def test_without_truth_only_the_mean_is_kept_and_an_empty_mask_means_the_field():
    unc = np.full(SHAPE, 0.2, np.float32)
    f = field_uncertainty("hl60", "hl60", "nucleus", unc, np.zeros(SHAPE, bool))
    assert f.n_voxels == unc.size and f.uncertainty_mean == pytest.approx(0.2)
    assert math.isnan(f.error_mean) and math.isnan(f.spearman)
    assert "uncertainty_sample" not in f.record()
    table = uncertainty_table([f])
    assert math.isnan(table.loc[0, "spearman"]) and math.isnan(table.loc[0, "ratio_to_reference"])


def test_rank_correlation_is_nan_when_undefined():
    assert math.isnan(rank_correlation(np.ones(10), np.arange(10)))
    assert math.isnan(rank_correlation(np.arange(2), np.arange(2)))
    assert rank_correlation(np.arange(10), np.arange(10) ** 2) == pytest.approx(1.0)


def test_new_sets_seeds_are_checked_against_every_set():
    config = read_ood_config(CONFIG)
    physical = config["parts"]["physical"]
    assert in_domain_seeds(physical) == [IN_DOMAIN_SEED + i for i in range(6)]
    assert seed_conflicts([950_000, 960_003], config) == []
    assert seed_conflicts(in_domain_seeds(physical), config, in_domain=False) == []
    assert seed_conflicts([IN_DOMAIN_SEED], config) == ["seeds of the in-domain reference"]
    assert seed_conflicts([900_001], config) == ["seeds of the physical part"]
    assert seed_conflicts([900_100], config) == ["seeds of the textbook part"]
    assert "training" in seed_conflicts([12], config)[0]
    assert "experiments" in seed_conflicts([100_000], config)[0]


def test_make_ood_sets_writes_the_in_domain_reference(tmp_path, load_script):
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["parts"]["physical"]["shape"] = [16, 64, 64]
    small = tmp_path / "ood.yaml"
    small.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "ood"
    assert load_script("make_ood_sets").main(
        [str(small), str(out), "--parts", "textbook", "--n-fields", "1", "--in-domain"]) == 0
    with open(out / IN_DOMAIN / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["cell_type"], r["seed"], r["split"]) for r in rows] == [
        ("fibroblast", str(IN_DOMAIN_SEED), "test")]
    with h5py.File(out / IN_DOMAIN / rows[0]["path"], "r") as h:
        assert h["ri"].shape == (16, 64, 64) and h.attrs["physics"] == "fast"
        assert "membrane" in h["masks"]


def test_part_uncertainty_reads_each_field_and_its_cells(paired_dataset, load_script):
    script = load_script("eval_ood")
    rng = np.random.default_rng(1)

    def predict(sample):
        fl = {t: a + 0.01 * rng.standard_normal(a.shape).astype(np.float32)
              for t, a in sample.fl.items()}
        sd = {t: np.full(a.shape, 0.1, np.float32) for t, a in fl.items()}
        return PredictionMaps(fl, uncertainty_model=sd)

    fields = script.part_uncertainty("textbook", paired_dataset / "manifest.csv", predict, 100)
    assert {f.fov for f in fields} == {"fibroblast_000", "fibroblast_001", "hela_002",
                                       "hela_003"}  # the test split
    assert {f.target for f in fields} == {"nucleus", "lipid_droplets", "membrane"}
    assert all(f.uncertainty_mean == pytest.approx(0.1) and f.warned is False
               and 0 < f.n_voxels < 12 * 40 * 40 for f in fields)
    table = uncertainty_table(fields, reference="textbook")
    text = script.uncertainty_markdown(table, [IN_DOMAIN, "textbook"], 2, 4)
    assert "| target | (b) textbook cells |" in text  # no in-domain part: no column
    assert "| nucleus | 0.1000 (×1.00) |" in text
    assert "| nucleus | — |" in text  # a constant uncertainty ranks nothing


def test_uncertainty_markdown_shows_ratios_and_leaves_hl60_out_of_spearman(load_script):
    script = load_script("eval_ood")
    rng = np.random.default_rng(2)
    fields = [_field(rng, 0.05, IN_DOMAIN, "a"), _field(rng, 0.1, "physical", "b"),
              field_uncertainty("hl60", "hl60", "nucleus", np.full(SHAPE, 0.3), np.ones(SHAPE))]
    table = uncertainty_table(fields)
    text = script.uncertainty_markdown(table, [IN_DOMAIN, "physical", "hl60"], 2, 4)
    means, spearman = text.split("Spearman")
    assert "(×2.0" in means and "(c) HL60" in means and "fields warned off-domain" in means
    assert "(c) HL60" not in spearman and "(a) physical tomograph" in spearman
