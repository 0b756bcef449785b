"""scripts/make_sim_data.py: the training-data recipe of the shipped models."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import h5py
import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_sim_data.py"


def _script():
    spec = importlib.util.spec_from_file_location("make_sim_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_sim_data"] = module  # worker processes find _write_fov by module name
    spec.loader.exec_module(module)
    return module


def test_sparse_fields_hold_one_cell_and_alternate_mitosis(tmp_path):
    out = tmp_path / "sim"
    rc = _script().main([str(out), "--cell-types", "macrophage", "--train", "1", "--val", "0",
                         "--sparse-train", "2", "--sparse-val", "1", "--shape", "16", "64", "64"])
    assert rc == 0
    with open(out / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["split"], r["seed"]) for r in rows] == [
        ("train", "0"), ("train", "50000"), ("train", "50001"), ("val", "60000")]
    variants = []
    for row in rows[1:]:
        with h5py.File(out / row["path"]) as h:
            assert int(h.attrs["n_cells"]) == 1
            variants.append(h.attrs["variants"])
            # a single small cell leaves most of the field as empty medium
            assert np.mean(h["cell_labels"][:] == 0) > 0.3
    assert variants == ["normal", "mitotic", "normal"]
    # a second manifest over the same files draws the mitotic field 3 times as often
    assert _script().main([str(out), "--cell-types", "macrophage", "--train", "1", "--val", "0",
                           "--sparse-train", "2", "--sparse-val", "1", "--shape", "16", "64",
                           "64", "--mitotic-weight", "3", "--manifest", "weighted.csv"]) == 0
    from ri2fl.data import manifest_weights

    weights = manifest_weights(out / "weighted.csv")
    assert [weights[(out / r["path"]).resolve()] for r in rows] == [1.0, 1.0, 3.0, 1.0]


def test_existing_files_are_kept_unless_overwrite(tmp_path):
    out = tmp_path / "sim"
    args = [str(out), "--train", "1", "--val", "0", "--shape", "16", "48", "48"]
    assert _script().main(args) == 0
    path = out / "fibroblast_train_00000.h5"
    with h5py.File(path, "a") as h:
        h.attrs["stale"] = 1  # stands for a file written by an older simulator
    assert _script().main(args) == 0  # resumes: the file is kept
    with h5py.File(path) as h:
        assert "stale" in h.attrs
    assert _script().main([*args, "--overwrite"]) == 0
    with h5py.File(path) as h:
        assert "stale" not in h.attrs


def test_worker_processes_write_the_same_fields(tmp_path):
    args = ["--train", "2", "--val", "1", "--shape", "16", "48", "48"]
    assert _script().main([str(tmp_path / "serial"), *args]) == 0
    assert _script().main([str(tmp_path / "parallel"), *args, "--workers", "2"]) == 0
    for name in ("fibroblast_train_00000.h5", "fibroblast_train_00001.h5",
                 "fibroblast_val_10000.h5"):
        with h5py.File(tmp_path / "serial" / name) as a, \
                h5py.File(tmp_path / "parallel" / name) as b:
            assert np.array_equal(a["ri"][:], b["ri"][:])
    assert (tmp_path / "parallel" / "manifest.csv").read_text() == \
        (tmp_path / "serial" / "manifest.csv").read_text()


def test_lipid_fields_hold_more_droplets_under_their_own_seeds(tmp_path):
    out = tmp_path / "sim"
    assert _script().main([str(out), "--cell-types", "macrophage", "--train", "1", "--val", "0",
                           "--lipid-train", "1", "--lipid-val", "1",
                           "--lipid-droplets", "30", "30",
                           "--shape", "16", "64", "64"]) == 0
    with open(out / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["split"], r["seed"]) for r in rows] == [("train", "0"), ("train", "70000"),
                                                       ("val", "80000")]
    with h5py.File(out / rows[1]["path"]) as h:
        assert list(h.attrs["droplets_per_cell"]) == [30, 30]
    with h5py.File(out / rows[0]["path"]) as h:
        assert "droplets_per_cell" not in h.attrs
