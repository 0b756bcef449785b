"""Losses against analytic cases: Sobel of ramps, GDL, Dice + BCE."""

from __future__ import annotations

import math

import pytest
import torch

from ri2fl.errors import ConfigError
from ri2fl.train.losses import (
    channel_weights_from_variance,
    dice_bce_loss,
    gdl_loss,
    get_loss,
    laplacian3d,
    laplacian_loss,
    mse_gdl_loss,
    sobel3d,
)


def _ramp(slopes, shape=(7, 8, 9)):
    z, y, x = torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in shape],
                             indexing="ij")
    return (slopes[0] * z + slopes[1] * y + slopes[2] * x)[None, None]


def test_sobel_of_ramp_is_its_slope():
    g = sobel3d(_ramp((0.2, -0.7, 1.5)))
    assert g.shape == (1, 1, 3, 5, 6, 7)
    for axis, slope in enumerate((0.2, -0.7, 1.5)):
        torch.testing.assert_close(g[0, 0, axis], torch.full_like(g[0, 0, axis], slope))


def test_gdl_of_two_ramps_is_mean_squared_slope_difference():
    a, b = _ramp((0.0, 0.0, 0.5)), _ramp((0.0, 0.3, 0.1))
    expected = (0.3**2 + 0.4**2) / 3
    assert math.isclose(float(gdl_loss(a, b)), expected, rel_tol=1e-9)


def test_gdl_ignores_offsets_and_mse_gdl_adds_both_terms():
    a = _ramp((0.1, 0.2, 0.3))
    assert float(gdl_loss(a, a + 5.0)) == pytest.approx(0.0, abs=1e-12)
    b = a + 0.5
    assert float(mse_gdl_loss(b, a)) == pytest.approx(0.25)
    c = _ramp((0.1, 0.2, 0.6))
    expected = float(torch.mean((c - a) ** 2)) + 2.0 * 0.3**2 / 3
    assert float(mse_gdl_loss(c, a, gdl_weight=2.0)) == pytest.approx(expected)


def test_dice_bce_perfect_and_wrong_predictions():
    target = torch.zeros(1, 2, 4, 4, 4)
    target[:, 0, 1:3, 1:3, 1:3] = 1
    perfect = dice_bce_loss(target.clone(), target)
    assert float(perfect) == pytest.approx(0.0, abs=1e-6)
    # inverted probabilities: Dice loss near 1 and a BCE at the clamp, per channel
    wrong = float(dice_bce_loss(1 - target, target))
    assert wrong > 2 * 1.0
    half = float(dice_bce_loss(torch.full_like(target, 0.5), target))
    assert float(perfect) < half < wrong
    # BCE of p=0.5 is log 2 for every voxel, summed over two channels
    assert half > 2 * math.log(2)


def test_unknown_loss_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown loss"):
        get_loss("huber")


def test_channel_weights_make_each_target_count_by_its_weight():
    pred = torch.zeros(1, 2, 5, 5, 5)
    target = torch.zeros(1, 2, 5, 5, 5)
    target[:, 0] = 1.0  # only the first channel is wrong, by 1 everywhere (no gradients)
    assert float(mse_gdl_loss(pred, target)) == pytest.approx(0.5)
    assert float(mse_gdl_loss(pred, target, channel_weights=[3.0, 1.0])) == pytest.approx(0.75)
    assert float(mse_gdl_loss(pred, target, channel_weights=[1.0, 1.0])) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="channel weights"):
        mse_gdl_loss(pred, target, channel_weights=[1.0, 1.0, 1.0])


def test_overshoot_weight_charges_painted_signal_more_than_missing_signal():
    target = torch.zeros(1, 2, 5, 5, 5)
    target[:, 1] = 1.0
    over = target + 0.5   # 0.5 too bright everywhere (a constant offset: no gradient term)
    under = target - 0.5
    assert float(mse_gdl_loss(over, target, overshoot_weight=1.0)) == pytest.approx(0.5)
    assert float(mse_gdl_loss(under, target, overshoot_weight=1.0)) == pytest.approx(0.25)
    assert float(mse_gdl_loss(over, target)) == pytest.approx(0.25)
    # the extra term is weighted per channel like the MSE: only channel 0 overshoots here
    half = target.clone()
    half[:, 0] += 0.5
    weighted = mse_gdl_loss(half, target, channel_weights=[3.0, 1.0], overshoot_weight=1.0)
    assert float(weighted) == pytest.approx(2 * 3.0 * 0.25 / 4)


def test_laplacian_of_a_quadratic_is_constant_and_of_a_ramp_zero():
    z, y, x = torch.meshgrid(*(torch.arange(10.0),) * 3, indexing="ij")
    bowl = (0.5 * (z ** 2 + y ** 2 + x ** 2))[None, None].double()
    assert laplacian3d(bowl).shape == (1, 1, 8, 8, 8)
    assert torch.allclose(laplacian3d(bowl), torch.full((1, 1, 8, 8, 8), 3.0).double())
    # the Gaussian (radius 2 at sigma 1) trims 2 more voxels per side, and a quadratic
    # smoothed is the same quadratic plus a constant
    smoothed = laplacian3d(bowl, sigma=1.0)
    assert smoothed.shape == (1, 1, 4, 4, 4)
    assert torch.allclose(smoothed, torch.full_like(smoothed, 3.0))
    ramp = (2 * z - y + 0.5 * x)[None, None]
    assert torch.allclose(laplacian3d(ramp), torch.zeros(1, 1, 8, 8, 8), atol=1e-5)


def _two_slabs() -> tuple[torch.Tensor, torch.Tensor]:
    """Two bright slabs with a dark gap between them along x, and a prediction filling it."""
    target = torch.zeros(1, 1, 9, 9, 15)
    target[..., 4:7] = 1.0
    target[..., 8:11] = 1.0
    filled = target.clone()
    filled[..., 7] = 1.0
    return target, filled


def test_laplacian_term_charges_a_filled_dip():
    target, filled = _two_slabs()
    assert float(laplacian_loss(target, target)) == 0.0
    # unsmoothed, a one-voxel dip weighs far more in curvature than in gradient
    assert float(laplacian_loss(filled, target, sigma=0.0)) > 10 * float(gdl_loss(filled, target))
    assert float(laplacian_loss(filled, target, sigma=1.0)) > 0.01
    # the term enters mse_gdl with its weight and its sigma
    base = float(mse_gdl_loss(filled, target))
    assert float(mse_gdl_loss(filled, target, laplacian_weight=0.5)) == pytest.approx(
        base + 0.5 * float(laplacian_loss(filled, target)))
    unsmoothed = mse_gdl_loss(filled, target, laplacian_weight=0.5, laplacian_sigma=0.0)
    assert float(unsmoothed) == pytest.approx(
        base + 0.5 * float(laplacian_loss(filled, target, sigma=0.0)))
    assert float(laplacian_loss(filled[..., :6], target[..., :6])) == 0.0


def test_smoothed_laplacian_term_is_not_dominated_by_the_targets_noise():
    target, filled = _two_slabs()
    noisy = target + 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    # against a noisy target, the unsmoothed term is mostly the noise's own curvature
    raw_noise = float(laplacian_loss(target, noisy, sigma=0.0))
    raw_dip = float(laplacian_loss(filled, target, sigma=0.0))
    smooth_noise = float(laplacian_loss(target, noisy, sigma=1.0))
    smooth_dip = float(laplacian_loss(filled, target, sigma=1.0))
    assert smooth_noise / smooth_dip < 0.1 * raw_noise / raw_dip


def test_inverse_variance_weights_average_one_and_are_capped():
    weights = channel_weights_from_variance([4e-3, 1e-3])
    assert weights == pytest.approx([0.4, 1.6])
    capped = channel_weights_from_variance([1.0, 1e-9], max_ratio=10.0)
    assert capped[1] / capped[0] == pytest.approx(10.0, rel=1e-4)
    assert sum(capped) / 2 == pytest.approx(1.0)
