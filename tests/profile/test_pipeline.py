"""profile_volume wires prediction, segmentation and measurement together.

Tiny untrained networks stand in for the shipped ones: the numbers are meaningless, the
plumbing (grids, channel names, uncertainty, masks, labels) is what is checked.
"""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.constants import ORGANELLE_MASKS, TARGETS
from ri2fl.profile.pipeline import profile_volume

models = pytest.importorskip("ri2fl.models")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    import torch

    folder = tmp_path_factory.mktemp("models")
    small = {"features": 2, "depth": 2, "multiplier": 2, "z_pool_levels": 1}
    configs = {
        "fl": {"task": "ri2fl", "targets": list(TARGETS), "patch_size": [16, 32, 32],
               "model": {**small, "dropout": 0.1}},
        "seg": {"task": "organelle_seg", "targets": list(ORGANELLE_MASKS),
                "patch_size": [16, 32, 32], "model": {**small, "final_activation": "sigmoid"}},
        "cell": {"task": "cell_seg", "targets": ["cell"], "voxel_size_um": [0.4, 0.6, 0.6],
                 "model": {**small, "in_channels": 4, "out_channels": 1,
                           "final_activation": "sigmoid"}},
    }
    paths = {}
    for name, cfg in configs.items():
        torch.manual_seed(0)
        paths[name] = models.save_checkpoint(folder / f"{name}.pt", models.build(cfg), cfg)
    return paths


def test_profile_volume_predicts_segments_and_measures(tiny_models):
    rng = np.random.default_rng(0)
    shape = (16, 40, 40)
    ri = (1.337 + 0.001 * rng.standard_normal(shape)).astype(np.float32)
    ri[4:12, 10:30, 10:30] += 0.02
    try:
        field = profile_volume(ri, (0.2, 0.15, 0.15), 1.337, model=tiny_models["fl"], tta=2,
                               mc=2, segment_options={"model": tiny_models["seg"],
                                                      "cell_model": tiny_models["cell"]})
    except TypeError as exc:  # another part's API moved: say so rather than pass silently
        pytest.fail(f"pipeline no longer matches infer/segment: {exc}")
    assert set(field.fl) == set(TARGETS)
    assert all(v.shape == shape for v in field.fl.values())
    assert set(field.uncertainty) == set(TARGETS)
    assert all((u >= 0).all() for u in field.uncertainty.values())
    assert field.cell_labels.shape == shape and set(field.masks) == set(ORGANELLE_MASKS)
    table = field.table
    assert len(table) == len(np.unique(field.cell_labels[field.cell_labels > 0]))
    if len(table):
        assert table["cell_nucleus_uncertainty_mean_au"].notna().all()
