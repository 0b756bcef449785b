"""The 3D U-Net: any input size, size of the default configuration, MC dropout."""

from __future__ import annotations

import pytest
import torch

from ri2fl.models import UNet3D, build, enable_mc_dropout, n_parameters


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 5), (9, 30, 17), (16, 16, 16)])
def test_any_input_size_gives_same_output_size(shape):
    net = UNet3D(out_channels=3, features=4, depth=3, z_pool_levels=1).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 1, *shape))
    assert out.shape == (2, 3, *shape)


def test_anisotropic_pooling_keeps_z_multiple_small():
    net = UNet3D(features=4, depth=4, z_pool_levels=1)
    assert net.size_multiple == (2, 8, 8)
    assert UNet3D(features=4, depth=4).size_multiple == (8, 8, 8)


def test_default_configuration_fits_in_20_mb():
    net = build({"model": {"features": 12, "depth": 4, "multiplier": 2, "z_pool_levels": 2}})
    size_mb = n_parameters(net) * 4 / 1e6
    assert 0.3 < size_mb < 20
    assert net.head.out_channels == 6


def test_sigmoid_variant_outputs_probabilities():
    net = UNet3D(out_channels=4, features=4, depth=2, final_activation="sigmoid").eval()
    with torch.no_grad():
        out = net(torch.randn(1, 1, 6, 10, 10) * 10)
    assert out.min() >= 0 and out.max() <= 1


def test_mc_dropout_passes_differ_eval_passes_identical():
    torch.manual_seed(0)
    net = UNet3D(out_channels=2, features=4, depth=2, dropout=0.3)
    x = torch.rand(1, 1, 8, 16, 16)
    net.eval()
    with torch.no_grad():
        a, b = net(x), net(x)
    assert torch.equal(a, b)
    enable_mc_dropout(net)
    with torch.no_grad():
        c, d = net(x), net(x)
    assert not torch.allclose(c, d)
    # only the dropout layers sample: normalisation stays in eval mode
    assert all(not m.training for m in net.modules()
               if isinstance(m, torch.nn.InstanceNorm3d))


def test_rejects_non_5d_input():
    with pytest.raises(ValueError, match="5D"):
        UNet3D(features=4, depth=2)(torch.rand(1, 8, 8, 8))
