"""The shipped default model: present, verified, small, six targets, runs on any size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ri2fl.constants import CANONICAL_VOXEL_SIZE_UM, MEDIUM_INDEX, TARGETS
from ri2fl.infer import predict_volume
from ri2fl.models import WEIGHTS_DIR, available, load
from ri2fl.simulate.optics import reconstruct_fast


@pytest.fixture(scope="module")
def default_model():
    if "default" not in available():
        pytest.skip("default weights not trained yet")
    return load("default")


def test_default_is_small_and_documented(default_model):
    assert (WEIGHTS_DIR / "default.pt").stat().st_size < 20e6
    assert default_model.targets == list(TARGETS)
    assert default_model.task == "ri2fl" and default_model.input_kind == "ri"
    # trained on a grid it records (coarser than the canonical one); inference resamples to it
    vz, vy, vx = default_model.voxel_size_um
    assert vz >= CANONICAL_VOXEL_SIZE_UM[0] and vy == vx >= CANONICAL_VOXEL_SIZE_UM[1]
    assert len(default_model.patch_size) == 3
    cell_types = default_model.config["training"]["data"]["cell_types"]
    assert cell_types == ["fibroblast"]


def test_default_predicts_six_channels_for_odd_sizes(default_model):
    with torch.no_grad():
        out = default_model(torch.rand(1, 1, 9, 21, 14))
    assert out.shape == (1, 6, 9, 21, 14)
    assert torch.isfinite(out).all()


def test_default_predicts_nothing_in_empty_medium(default_model):
    # RI of pure medium normalises to 0: no cell, so no fluorescence anywhere
    with torch.no_grad():
        out = default_model(torch.zeros(1, 1, 16, 48, 48))
    assert float(out.abs().mean()) < 0.1


def test_default_predicts_nothing_in_noisy_empty_medium(default_model):
    # medium as the tomograph gives it (band-limited noise, missing cone filled): instance
    # normalisation blows such noise up to unit variance, so a network that never saw empty
    # medium paints cells into it (the stage-2 default: nucleus > 0.1 in 25 % of the voxels)
    voxel = (0.2, 0.15, 0.15)
    ri = MEDIUM_INDEX + reconstruct_fast(np.zeros((32, 192, 192), np.float32), voxel,
                                         noise_std=6e-4, rng=np.random.default_rng(3))
    pred = predict_volume(ri.astype(np.float32), voxel, model=default_model)
    painted = {t: float(np.mean(np.asarray(v) > 0.1)) for t, v in pred.fl.items()}
    assert max(painted.values()) < 0.01, painted


@pytest.mark.parametrize("cell_type,seed", [("epithelial", 7), ("hek293", 2)])
def test_default_finds_the_chromosomes_of_a_dividing_cell(default_model, cell_type, seed):
    # a lone mitotic cell of a family the network never saw: its nucleus channel is the
    # condensed chromosomes (the stage-3 weights score PCC 0.43 and 0.29 on these two fields)
    from ri2fl.evaluate.metrics import pcc
    from ri2fl.simulate import simulate_fov

    fov = simulate_fov(cell_type, seed=seed, shape=(48, 160, 160), variant="mitotic",
                       n_cells=1)
    pred = predict_volume(fov.ri, fov.voxel_size_um, medium_index=fov.medium_index,
                          targets=["nucleus"], model=default_model).fl["nucleus"]
    assert pcc(fov.fl["nucleus"], pred) > 0.7


@pytest.mark.parametrize("method", ["network", "watershed"])
def test_segmentation_finds_no_cell_in_noisy_empty_medium(method):
    from ri2fl.segment import segment_volume

    if not {"segment-default", "cell-default"} <= set(available()):
        pytest.skip("shipped segmentation weights not installed")
    voxel = (0.2, 0.15, 0.15)
    ri = MEDIUM_INDEX + reconstruct_fast(np.zeros((32, 192, 192), np.float32), voxel,
                                         noise_std=6e-4, rng=np.random.default_rng(4))
    seg = segment_volume(ri.astype(np.float32), voxel, MEDIUM_INDEX, method=method)
    assert seg.n_cells == 0
    assert not any(mask.any() for mask in seg.masks.values())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*unlike the data:UserWarning")
def test_default_broad_finds_the_real_hl60_nucleus_in_the_darker_interior(hl60_path):
    """Issue #30: on the real HL60 cell (another microscope, a rotating sample), the inferred
    nucleus is at least twice as bright in the cell's darker interior as in the rest of it.
    The opt-in `default-broad` does it (3.7x); `default` does not (0.83x)."""
    from ri2fl.evaluate.ood import hl60_reference
    from ri2fl.io import read

    if "default-broad" not in available():
        pytest.skip("default-broad weights not installed")
    vol = read(hl60_path)
    ri = np.asarray(vol.data)
    fl = np.asarray(predict_volume(ri, vol.voxel_size_um, model="default-broad",
                                   medium_index=vol.medium_index, targets=["nucleus"],
                                   progress=False).fl["nucleus"])
    ref = hl60_reference(ri, vol.voxel_size_um, vol.medium_index)
    ratio = fl[ref["darker"]].mean() / fl[ref["cell"] & ~ref["darker"]].mean()
    assert ratio >= 2.0, ratio


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*unlike the data:UserWarning")
def test_segment_broad_reads_the_real_hl60_as_one_cell_with_its_nucleus_inside(hl60_path):
    """Issue #30: on the real HL60 cell the opt-in `segment-broad` finds one cell with no
    hole through it and a nucleus in its interior (98 % deeper than 1.5 µm) that is 22 % of
    the cell (goal 20-80 %). The shipped `segment-default` makes the cell a ring (22 % of it
    a hole) with its nucleus at the rim (57 % deep)."""
    from ri2fl.evaluate.ood import hl60_checks
    from ri2fl.io import read
    from ri2fl.segment import segment_volume

    if "segment-broad" not in available():
        pytest.skip("segment-broad weights not installed")
    vol = read(hl60_path)
    ri = np.asarray(vol.data, np.float32)
    seg = segment_volume(ri, vol.voxel_size_um, vol.medium_index, method="network",
                         model="segment-broad")
    checks = {c["check"]: c for c in hl60_checks(ri, vol.voxel_size_um, vol.medium_index,
                                                 seg.cell_labels, seg.nucleus_labels)}
    for name in ("cells", "cell hole fraction", "nucleus deeper than 1.5 µm",
                 "nucleus fraction of cell"):
        assert checks[name]["pass"], checks[name]
