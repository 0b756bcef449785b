"""The profile and report commands end to end on small paired files with known cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ri2fl.cli.main import main
from ri2fl.io import PairedSample, write_paired

SPACING = (0.2, 0.15, 0.15)


def _paired(path, n_cells, seed, dn=0.023):
    rng = np.random.default_rng(seed)
    shape = (24, 64, 96)
    z, y, x = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, SPACING)], indexing="ij")
    labels = np.zeros(shape, np.int32)
    nuclei = np.zeros(shape, np.int32)
    ri = np.full(shape, 1.337, np.float32)
    for i in range(n_cells):
        cy, cx = 4.8, 2.4 + i * 3.6
        r = rng.uniform(1.3, 1.6)
        cell = (z - 2.4) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r**2
        nuc = (z - 2.4) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= (r / 2) ** 2
        labels[cell], nuclei[nuc] = i + 1, i + 1
        ri[cell] = 1.337 + dn
    fl = {"nucleus": (nuclei > 0).astype(np.float32),
          "actin": np.where(labels > 0, 0.3, 0).astype(np.float32)}
    write_paired(path, PairedSample(ri=ri, fl=fl, voxel_size_um=SPACING, medium_index=1.337,
                                    cell_labels=labels, nucleus_labels=nuclei,
                                    attrs={"cell_type": "phantom"}))
    return path


def test_profile_then_report(tmp_path, capsys):
    a = [_paired(tmp_path / f"a{i}.h5", 3, i) for i in range(2)]
    b = [_paired(tmp_path / f"b{i}.h5", 3, 10 + i, dn=0.030) for i in range(2)]
    assert main(["profile", *map(str, a), "--ground-truth", "--condition", "control",
                 "--serial", "-o", str(tmp_path / "a.parquet")]) == 0
    assert main(["profile", *map(str, b), "--ground-truth", "--condition", "dense",
                 "--serial", "-o", str(tmp_path / "b.csv")]) == 0
    ta, tb = pd.read_parquet(tmp_path / "a.parquet"), pd.read_csv(tmp_path / "b.csv")
    assert len(ta) == 6 and len(tb) == 6
    assert set(ta["condition"]) == {"control"} and set(ta["cell_type"]) == {"phantom"}
    assert ta["cell_dry_mass_density_pg_per_um3"].to_numpy() == pytest.approx(0.023 / 0.19)
    assert "6 cells from 2 inputs" in capsys.readouterr().out
    report = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "a.parquet"), str(tmp_path / "b.csv"),
                 "-o", str(report), "--embedding", "pca"]) == 0
    text = report.read_text()
    # two files (the replicates) per condition are too few for a test, and it says so
    stats = text.split("<section id='statistics'>")[1].split("</section>")[0]
    assert "not tested: n = 2 vs 2 replicates" in stats
    assert main(["report", str(tmp_path / "a.parquet"), str(tmp_path / "b.csv"),
                 "-o", str(report), "--embedding", "pca", "--replicate", "cell",
                 "--overwrite"]) == 0
    stats = report.read_text().split("<section id='statistics'>")[1].split("</section>")[0]
    assert "cell_dry_mass_density_pg_per_um3" in stats


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["profile", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "f.txt")]) == 2
    assert "use .parquet or .csv" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("")
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.csv" in err


def _stores(tmp_path, frames=None):
    """RI, prediction and segmentation OME-Zarr stores of two drifting cells."""
    from ri2fl.io import write_ome_zarr

    shape = (12, 40, 60)
    n_t = frames or 1
    ri = np.full((n_t, *shape), 1.337, np.float32)
    labels = np.zeros((n_t, 6, *shape), np.int32)  # cell, nucleus, 4 organelle masks
    fl = np.zeros((n_t, 3, *shape), np.float32)
    for t in range(n_t):
        for i, x0 in enumerate((8, 34)):
            x = x0 + 2 * t  # drift 0.3 µm per frame
            labels[t, 0, 3:9, 10:30, x:x + 14] = i + 1
            labels[t, 1, 4:8, 15:25, x + 4:x + 10] = i + 1
        ri[t][labels[t, 0] > 0] = 1.36
        fl[t, 0] = labels[t, 1] > 0
        fl[t, 1] = np.where(labels[t, 0] > 0, 0.5, 0)
        fl[t, 2] = np.where(labels[t, 0] == 2, 0.3, 0.1)  # nucleus uncertainty
    labels[:, 2] = labels[:, 1] > 0  # nucleus mask
    axes = "tczyx" if frames else "czyx"
    sl = slice(None) if frames else 0
    kw = {"time_interval_s": 1800.0} if frames else {}
    paths = (tmp_path / "cell.ome.zarr", tmp_path / "pred" / "cell.ome.zarr",
             tmp_path / "seg" / "cell.ome.zarr")
    write_ome_zarr(paths[0], ri[sl] if frames else ri[0], SPACING,
                   axes="tzyx" if frames else "zyx", channel_names=["ri"], **kw)
    write_ome_zarr(paths[1], fl[sl], SPACING, axes=axes,
                   channel_names=["nucleus", "actin", "nucleus_uncertainty_data"], **kw)
    write_ome_zarr(paths[2], labels[sl], SPACING, axes=axes,
                   channel_names=["cell_labels", "nucleus_labels", "nucleus", "nucleolus",
                                  "membrane", "lipid_droplets"], **kw)
    return paths


def test_profile_reuses_predict_and_segment_outputs(tmp_path):
    ri, pred, seg = _stores(tmp_path)
    out = tmp_path / "f.csv"
    assert main(["profile", str(ri), "--predictions", str(pred.parent), "--segmentation",
                 str(seg), "--serial", "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["label"]) == [1, 2]
    assert table["cell_volume_um3"].to_numpy() == pytest.approx(6 * 20 * 14 * np.prod(SPACING))
    assert table["cytoplasm_actin_mean_au"].to_numpy() == pytest.approx(0.5)
    assert table["nucleus_nucleus_fraction"].to_numpy() == pytest.approx(1.0)
    assert table["cell_nucleus_uncertainty_mean_au"].to_numpy() == pytest.approx([0.1, 0.3])
    report = tmp_path / "r.html"
    assert main(["report", str(out), "-o", str(report), "--embedding", "pca", "--example",
                 str(ri), "--predictions", str(pred.parent), "--segmentation",
                 str(seg.parent)]) == 0
    examples = report.read_text().split("<section id='examples'>")[1].split("</section>")[0]
    assert examples.count("data:image/png;base64,") == 1


def test_profile_time_lapse_tracks_cells(tmp_path):
    ri, pred, seg = _stores(tmp_path, frames=3)
    out = tmp_path / "f.parquet"
    assert main(["profile", str(ri), "--predictions", str(pred), "--segmentation", str(seg),
                 "--serial", "-o", str(out)]) == 0
    table = pd.read_parquet(out)
    assert len(table) == 6 and sorted(table["frame"].unique()) == [0, 1, 2]
    assert list(table.sort_values(["frame", "label"])["time_s"][:4]) == [0, 0, 1800, 1800]
    # two tracks, each following one cell through the three frames
    assert table.groupby("track_id")["frame"].nunique().tolist() == [3, 3]
    assert table.groupby("track_id")["label"].nunique().tolist() == [1, 1]


def test_profile_refuses_a_prediction_store_as_input(tmp_path, capsys):
    _, pred, _ = _stores(tmp_path)
    assert main(["profile", str(pred), "--serial", "-o", str(tmp_path / "f.csv")]) == 2
    assert "--predictions" in capsys.readouterr().err
