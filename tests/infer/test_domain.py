"""Off-domain warnings (issue #30, "say when not to trust"): inputs unlike the simulated
training fields are named with their reasons; in-domain fields of any family are not."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
import zarr

from ri2fl.cli.main import main
from ri2fl.constants import RI_CLIP
from ri2fl.io import read
from ri2fl.models import WEIGHTS_DIR, build, save_checkpoint
from ri2fl.preprocess.domain import (
    OffDomainWarning,
    check_domain,
    domain_statistics,
    load_reference,
    warn_if_off_domain,
)
from ri2fl.simulate import optics, simulate_fov

CANONICAL = (0.2, 0.15, 0.15)


@pytest.fixture(scope="module")
def reference() -> dict:
    return load_reference(WEIGHTS_DIR / "default.pt")  # beside it: default.domain.json


@pytest.fixture(scope="module")
def hek_field():
    """A held-out in-domain field of another family (never a reference seed)."""
    return simulate_fov("hek293", seed=100001, shape=(32, 128, 128), medium_index=1.337)


@pytest.fixture
def textbook(load_script) -> np.ndarray:
    """A dome of RI 1.36 with a darker nucleus, Gaussian blur and noise: no tomograph."""
    return load_script("eval_domain").textbook_cell(shape=(20, 112, 112))


def test_the_shipped_models_have_references(reference):
    assert reference["model"] == "default"
    assert set(reference["ranges"]) >= {"background_noise", "cell_dn_p99"}
    assert load_reference(WEIGHTS_DIR / "segment-default.pt")["model"] == "segment-default"
    assert load_reference(torch.nn.Conv3d(1, 1, 1)) is None  # no checkpoint: no check


def test_hl60_warns_with_its_reasons(hl60_path):
    vol = read(hl60_path)
    with pytest.warns(OffDomainWarning) as record:
        reasons = warn_if_off_domain(np.asarray(vol.data), vol.voxel_size_um,
                                     vol.medium_index, WEIGHTS_DIR / "default.pt", "hl60.h5")
    assert len(record) == 1
    text = str(record[0].message)
    assert text.startswith("hl60.h5: unlike the data `default` was trained on: "
                           "voxel size 0.139 µm isotropic (trained 0.2 x 0.15 x 0.15 µm")
    assert "darkest background" in text and "fine lateral texture inside cells" in text
    assert "axial detail inside cells" in text  # 647 nm, a rotating sample: other optics
    assert len(reasons) == 4


def test_an_in_domain_field_of_another_family_does_not_warn(hek_field):
    with warnings.catch_warnings():
        warnings.simplefilter("error", OffDomainWarning)
        assert warn_if_off_domain(hek_field.ri, CANONICAL, 1.337,
                                  WEIGHTS_DIR / "default.pt") == []


def test_a_textbook_cell_warns(textbook, reference):
    reasons = check_domain(textbook, CANONICAL, 1.337, reference)
    # white noise, no tomograph's grain
    assert reasons[0].startswith("correlation of background noise between z slices 0.0")


@pytest.mark.parametrize("model", ["default", "segment-default"])
def test_a_coarser_axial_resolution_is_named(hek_field, model):
    """The same cells measured by an instrument of 750 nm and NA 1.0 (NA_ill 0.9): its axial
    band limit, 0.6 cycles/µm against the training instrument's 1.4, blurs them along z, and
    only their axial detail says so."""
    reference = load_reference(WEIGHTS_DIR / f"{model}.pt")
    dn = hek_field.ri_true - np.float32(1.337)
    rec = optics.reconstruct_fast(dn, CANONICAL, 1.337, rng=np.random.default_rng(0),
                                  na=1.0, na_ill=0.9, wavelength=0.75)
    coarse = np.clip(np.float32(1.337) + rec, *RI_CLIP)
    reasons = check_domain(coarse, CANONICAL, 1.337, reference)
    assert len(reasons) == 1 and reasons[0].startswith("axial detail inside cells (")
    low, high = reference["ranges"]["cell_axial_detail"]
    assert domain_statistics(coarse, CANONICAL, 1.337)["cell_axial_detail"] < low - 0.05
    assert low <= domain_statistics(hek_field.ri, CANONICAL, 1.337)["cell_axial_detail"] <= high


def test_a_wrong_medium_index_is_named(hek_field, reference):
    reasons = check_domain(hek_field.ri, CANONICAL, 1.341, reference)
    assert len(reasons) == 1 and reasons[0].startswith("background level minus medium index")


def test_what_cannot_be_measured_passes(reference):
    medium = np.full((16, 64, 64), 1.337, np.float32)  # no cells; flat, as if clipped
    stats = domain_statistics(medium, CANONICAL, 1.337)
    assert np.isnan(stats["cell_dn_p99"]) and np.isnan(stats["background_z_correlation"])
    assert stats["background_offset"] == pytest.approx(0, abs=1e-6)
    assert check_domain(medium, CANONICAL, 1.337, reference) == []


@pytest.fixture
def tiny_checkpoint(tmp_path, reference):
    """A tiny network with the default's domain reference beside it."""
    torch.manual_seed(0)
    config = {"model": {"features": 4, "depth": 2}, "targets": ["membrane", "nucleus"],
              "patch_size": [16, 32, 32]}
    path = save_checkpoint(tmp_path / "tiny.pt", build(config), config)
    (tmp_path / "tiny.domain.json").write_text(json.dumps({**reference, "model": "tiny"}))
    return path


def test_cli_prints_one_warning_line_per_input_and_exits_0(tmp_path, tiny_checkpoint,
                                                           hek_field, textbook, capsys):
    np.save(tmp_path / "textbook.npy", textbook)
    np.save(tmp_path / "hek.npy", hek_field.ri[:20, :112, :112])  # small: a quick prediction
    rc = main(["predict", str(tmp_path / "textbook.npy"), str(tmp_path / "hek.npy"),
               "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint),
               "--voxel-size", *map(str, CANONICAL), "--patch-size", "20", "112", "112",
               "--serial", "--device", "cpu"])
    assert rc == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("ri2fl predict: warning: textbook.npy: unlike the data `tiny` "
                             "was trained on: ")
    attrs = {name: zarr.open_group(tmp_path / "out" / f"{name}.ome.zarr").attrs["ri2fl"]
             for name in ("textbook", "hek")}
    assert attrs["textbook"]["off_domain"] and attrs["hek"]["off_domain"] == []


@pytest.mark.slow
def test_predict_and_segment_warn_on_hl60(tmp_path, hl60_path, capsys):
    shutil.copy(hl60_path, tmp_path / "hl60.h5")
    for command, extra in (("predict", ["--device", "cpu"]), ("segment", [])):
        out = tmp_path / f"{command}.ome.zarr"
        assert main([command, str(tmp_path / "hl60.h5"), "-o", str(out), *extra]) == 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(
            f"ri2fl {command}: warning: hl60.h5: unlike the data `")
