"""Time-lapses: bleaching, mitosis, drift; and the command line."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import ndimage

from ri2fl.cli.main import main
from ri2fl.errors import ConfigError
from ri2fl.io import read_paired
from ri2fl.simulate import simulate_timelapse

SHAPE = (48, 96, 96)


@pytest.fixture(scope="module")
def mitosis():
    return simulate_timelapse("macrophage", seed=5, n_frames=6, shape=SHAPE, event="mitosis",
                              n_cells=1, physics="none", bleach_half_life_frames=3.0,
                              drift_um_per_frame=0.0)


def test_fluorescence_bleaches_but_refractive_index_does_not():
    frames = simulate_timelapse("hek293", seed=1, n_frames=4, shape=(32, 64, 64), n_cells=1,
                                physics="none", bleach_half_life_frames=2.0,
                                drift_um_per_frame=0.0, fl_noise=False)
    first, last = frames[0], frames[-1]
    # the same structures, half-life 2 frames: three frames later 2^-1.5 of the signal is left
    ratio = last.fl["membrane"].sum() / first.fl["membrane"].sum()
    assert ratio == pytest.approx(2 ** -1.5, rel=0.15)
    dn0 = (first.ri_true - first.medium_index).sum()
    dn3 = (last.ri_true - last.medium_index).sum()
    assert dn3 == pytest.approx(dn0, rel=0.1)  # dry mass does not bleach


def test_mitosis_breaks_down_the_envelope_and_ends_with_two_daughters(mitosis):
    first, middle, last = mitosis[0], mitosis[2], mitosis[-1]
    assert first.masks["nucleolus"].any() and first.cell_labels.max() == 1
    # prometaphase / metaphase: condensed chromosomes, no nucleoli, no nuclear envelope
    assert not middle.masks["nucleolus"].any()
    chrom = middle.masks["nucleus"]
    assert 0 < chrom.sum() < 0.5 * first.masks["nucleus"].sum()
    assert middle.metadata["variants"] == "mitotic"
    # telophase: two daughter cells, each with its own nucleus
    assert last.cell_labels.max() == 2
    for label in (1, 2):
        assert (last.nucleus_labels == label).any()
    assert ndimage.label(last.masks["nucleus"])[1] == 2


def test_drift_moves_the_cells():
    frames = simulate_timelapse("macrophage", seed=3, n_frames=3, shape=(32, 96, 96),
                                n_cells=1, physics="none", drift_um_per_frame=1.0)
    c0 = np.array(ndimage.center_of_mass(frames[0].masks["membrane"]))
    c2 = np.array(ndimage.center_of_mass(frames[2].masks["membrane"]))
    shift_um = np.hypot(*(c2 - c0)[1:] * 0.15)
    assert 1.0 < shift_um < 3.5


def test_unknown_event_is_a_config_error():
    with pytest.raises(ConfigError, match="event"):
        simulate_timelapse("fibroblast", 0, 2, shape=(16, 32, 32), event="apoptosis")


def test_cli_writes_files_and_manifest(tmp_path, capsys):
    rc = main(["simulate", "-o", str(tmp_path), "--cell-types", "macrophage", "--n", "2",
               "--shape", "16", "48", "48", "--seed", "3"])
    assert rc == 0
    with open(tmp_path / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all((tmp_path / r["path"]).exists() for r in rows)
    assert read_paired(tmp_path / rows[0]["path"]).ri.shape == (16, 48, 48)
    assert main(["simulate", "-o", str(tmp_path), "--modalities", "xray"]) == 2
    assert "unknown modalities" in capsys.readouterr().err
    padded = tmp_path / "padded"
    assert main(["simulate", "-o", str(padded), "--cell-types", "macrophage", "--n", "1",
                 "--shape", "16", "48", "48", "--seed", "3", "--pad-z"]) == 0
    assert bool(read_paired(next(padded.rglob("*.h5"))).attrs["pad_z"])
    lipid = tmp_path / "lipid"
    assert main(["simulate", "-o", str(lipid), "--cell-types", "macrophage", "--n", "1",
                 "--shape", "16", "48", "48", "--droplets-per-cell", "30", "40"]) == 0
    assert list(read_paired(next(lipid.rglob("*.h5"))).attrs["droplets_per_cell"]) == [30, 40]
    assert main(["simulate", "-o", str(lipid), "--droplets-per-cell", "9", "3"]) == 2
    assert "--droplets-per-cell" in capsys.readouterr().err


def test_stimulation_spreads_the_cell_and_strengthens_actin():
    frames = simulate_timelapse("hek293", seed=2, n_frames=3, shape=(32, 128, 128),
                                event="stimulation", n_cells=1, physics="none",
                                drift_um_per_frame=0.0, bleach_half_life_frames=None,
                                fl_noise=False)
    first, last = frames[0], frames[-1]
    assert last.masks["membrane"].sum() > 1.1 * first.masks["membrane"].sum()
    assert last.fl["actin"].sum() > 1.2 * first.fl["actin"].sum()


def test_cli_writes_one_file_per_frame_of_a_time_lapse(tmp_path):
    rc = main(["simulate", str(tmp_path), "--cell-type", "macrophage", "--n", "1",
               "--fov", "16", "48", "48", "--frames", "3", "--physics", "none"])
    assert rc == 0
    with open(tmp_path / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["frame"]) for r in rows] == [0, 1, 2]
    first, last = (read_paired(tmp_path / rows[i]["path"]) for i in (0, 2))
    assert int(last.attrs["timepoint"]) == 2
    assert last.fl["membrane"].sum() < first.fl["membrane"].sum()  # default bleaching
