"""The refined network: a coarse UNet3D plus a residual head on the input grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from torch.nn import functional

from ri2fl.models import (
    RefinedUNet3D,
    build,
    enable_mc_dropout,
    load,
    n_parameters,
    save_checkpoint,
)

BASE = {"features": 4, "depth": 2, "dropout": 0.2, "z_pool_levels": 1}


def _net(**kwargs) -> RefinedUNet3D:
    torch.manual_seed(0)
    return RefinedUNet3D(out_channels=3, base=BASE, refine_channels=[1], features=4,
                         layers=2, **kwargs)


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 5), (9, 30, 17)])
def test_any_input_size_gives_same_output_size(shape):
    with torch.no_grad():
        out = _net().eval()(torch.rand(2, 1, *shape))
    assert out.shape == (2, 3, *shape)


def test_untrained_head_returns_the_coarse_prediction_interpolated():
    net = _net().eval()
    x = torch.rand(1, 1, 8, 16, 24)
    with torch.no_grad():
        coarse = net.base(functional.avg_pool3d(x, 2))
        expected = functional.interpolate(coarse, size=(8, 16, 24), mode="trilinear")
        assert torch.allclose(net(x), expected, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.tuples(*[st.integers(1, 6)] * 3), st.integers(0, 2**16))
def test_block_average_is_the_linear_resampling_to_the_coarse_grid(half_shape, seed):
    # training resamples every volume with ndi.zoom(order=1, grid_mode=True); the refined
    # network must hand its coarse network the same input
    volume = np.random.default_rng(seed).random([2 * s for s in half_shape])
    zoomed = ndi.zoom(volume, 0.5, order=1, mode="nearest", grid_mode=True)
    pooled = functional.avg_pool3d(torch.from_numpy(volume)[None, None], 2)[0, 0].numpy()
    np.testing.assert_allclose(pooled, zoomed, atol=1e-12)


def test_training_moves_only_the_head_and_the_refined_channels():
    net = _net()
    frozen = {k: v.clone() for k, v in net.base.state_dict().items()}
    x = torch.rand(2, 1, 8, 16, 16)
    with torch.no_grad():
        before = net.eval()(x)
    net.train()
    assert not net.base.training  # a frozen base keeps its dropout off while training
    # only the head is trainable: what the trainer optimises and DDP synchronises
    assert n_parameters(net) == sum(p.numel() for p in net.head.parameters())
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        (net(x) - 1).square().mean().backward()
        optimizer.step()
    with torch.no_grad():
        after = net.eval()(x)
    for key, value in net.base.state_dict().items():
        assert torch.equal(value, frozen[key]), key
    assert torch.equal(after[:, [0, 2]], before[:, [0, 2]])
    assert not torch.allclose(after[:, 1], before[:, 1])


def test_mc_dropout_samples_the_coarse_network():
    net = enable_mc_dropout(_net())
    x = torch.rand(1, 1, 8, 16, 16)
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))
        net.eval()
        assert torch.equal(net(x), net(x))


def test_checkpoint_round_trip(tmp_path):
    net = _net()
    torch.nn.init.normal_(net.head[-1].weight)
    config = {"arch": "refined_unet3d", "targets": ["a", "b", "c"],
              "model": {"base": BASE, "refine_channels": [1], "features": 4, "layers": 2},
              "voxel_size_um": [0.2, 0.15, 0.15]}
    loaded = load(save_checkpoint(tmp_path / "r.pt", net, config))
    x = torch.rand(1, 1, 8, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), net.eval()(x))
    assert isinstance(build(config), RefinedUNet3D)


@pytest.mark.parametrize("channels", [[], [3], [-1]])
def test_rejects_refined_channels_the_network_does_not_have(channels):
    with pytest.raises(ValueError, match="refine_channels"):
        RefinedUNet3D(out_channels=3, base=BASE, refine_channels=channels)
