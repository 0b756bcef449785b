"""The out-of-domain evaluation of issue #30: its fixed definition, its sets, the HL60 checks."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from ri2fl.errors import ConfigError
from ri2fl.evaluate.ood import (
    EXPERIMENT_SEEDS,
    TRAINING_SEEDS,
    field_seeds,
    hl60_checks,
    optics_outside_training,
    read_ood_config,
)

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ood_eval.yaml"


def test_config_parses_and_its_seeds_are_no_one_elses():
    config = read_ood_config(CONFIG)
    assert config["fixed"] == "2026-12-07"
    assert "fixed 2026-12-07 before any training; never used for tuning" in " ".join(
        CONFIG.read_text(encoding="utf-8").lower().split())
    seeds = [s for part in ("physical", "textbook") for s in field_seeds(config["parts"][part])]
    assert len(seeds) == len(set(seeds)) == 12
    for lo, hi in (TRAINING_SEEDS, EXPERIMENT_SEEDS):
        assert not any(lo <= s < hi for s in seeds)
    assert TRAINING_SEEDS == (0, 100_000) and EXPERIMENT_SEEDS == (100_000, 200_000)
    for optics in config["parts"]["physical"]["optics"]:
        assert optics_outside_training(optics)
    goals = config["goals"]
    assert goals["fluorescence"] == {"nucleus": 0.85, "lipid_droplets": 0.85,
                                     "mean_of_six": 0.8}
    assert goals["segmentation"] == {"nucleus": 0.85, "membrane": 0.9}
    assert goals["exact_cell_counts"]["max_cells"] == 4


@pytest.mark.parametrize("change, match", [
    ({"seed": 99_998}, "training"), ({"seed": 150_000}, "experiments")])
def test_seeds_of_training_or_experiments_are_refused(tmp_path, change, match):
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["parts"]["textbook"].update(change)
    path = tmp_path / "ood.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        read_ood_config(path)


def test_optics_inside_the_training_ranges_are_refused(tmp_path):
    inside = {"name": "ht", "wavelength_um": 0.532, "na": 1.2, "na_ill": 1.08,
              "n_illuminations": 49}
    assert optics_outside_training(inside) == []
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["parts"]["physical"]["optics"].append(inside)
    path = tmp_path / "ood.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match="inside the training"):
        read_ood_config(path)


def test_make_ood_sets_builds_a_one_field_version(tmp_path, load_script):
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["parts"]["physical"]["shape"] = [16, 64, 64]
    config["parts"]["textbook"]["shape"] = [32, 104, 104]
    small = tmp_path / "ood.yaml"
    small.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "ood"
    assert load_script("make_ood_sets").main([str(small), str(out), "--n-fields", "1"]) == 0
    for part, seed in (("physical", 900000), ("textbook", 900100)):
        with open(out / part / "manifest.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [(r["seed"], r["split"]) for r in rows] == [(str(seed), "test")]
        with h5py.File(out / part / rows[0]["path"], "r") as h:
            assert h["ri"].shape == tuple(config["parts"][part]["shape"])
            assert "fl" in h and "cell_labels" in h and "masks" in h
            if part == "physical":
                assert h.attrs["physics"] == "physical" and h.attrs["optics"] == "violet"
                assert float(h.attrs["wavelength_um"]) == 0.405
                ri = h["ri"][:]
                assert ri.std() > 0 and not np.array_equal(ri, h["ri_true"][:])


def _ball(shape=(48, 48, 48), voxel=0.25):
    """A round cell of RI 1.36 in 1.335 with a darker nucleus (1.355) at its centre."""
    z, y, x = np.indices(shape) * voxel
    c = np.asarray(shape) * voxel / 2
    r = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)
    cell, nucleus = r < 5.0, r < 3.0
    ri = np.where(cell, 1.36, 1.335).astype(np.float32)
    ri[nucleus] = 1.355
    return ri, (voxel,) * 3, cell, nucleus, r


def test_hl60_checks_pass_the_textbook_reading_and_fail_a_rim_nucleus():
    ri, voxel, cell, nucleus, r = _ball()
    good = hl60_checks(ri, voxel, 1.335, cell.astype(np.int32), nucleus.astype(np.int32),
                       nucleus.astype(np.float32))
    assert [c["check"] for c in good][-1].startswith("nucleus FL")
    assert all(c["pass"] for c in good), good
    rim = (r > 4.0) & cell  # a crescent / shell at the rim, lit where the nucleus is not
    ring_cell = cell & ~(r < 2.0)  # a ring-shaped cell: a hole in the middle
    bad = {c["check"]: c for c in hl60_checks(ri, voxel, 1.335, ring_cell.astype(np.int32),
                                              rim.astype(np.int32), rim.astype(np.float32))}
    assert not bad["cell hole fraction"]["pass"]
    assert not bad["nucleus deeper than 1.5 µm"]["pass"]
    assert not bad["nucleus - cytoplasm RI"]["pass"]
    assert not bad["nucleus FL darker interior / rest"]["pass"]
    assert bad["cells"]["pass"]
