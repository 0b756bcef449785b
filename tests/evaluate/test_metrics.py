"""Metrics against scikit-image, StarDist's matching definitions and analytic cases."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ri2fl.errors import InputError
from ri2fl.evaluate import metrics as m


def _ball(shape, centre, radius):
    zz, yy, xx = np.indices(shape)
    c = np.asarray(centre)
    return ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) <= radius**2


@pytest.fixture
def pair(rng):
    true = ndi_smooth(rng.random((12, 20, 18)))
    pred = np.clip(true + 0.05 * rng.standard_normal(true.shape), 0, 1)
    return true, pred


def ndi_smooth(a):
    from scipy import ndimage as ndi
    return ndi.gaussian_filter(a, 1.5)


def test_psnr_matches_scikit_image_and_definition(pair):
    true, pred = pair
    expected = peak_signal_noise_ratio(true, pred, data_range=1.0)
    assert m.psnr(true, pred) == pytest.approx(expected, rel=1e-10)
    assert m.psnr(true, pred) == pytest.approx(10 * np.log10(1 / np.mean((true - pred) ** 2)))


def test_psnr_identical_is_infinite():
    a = np.linspace(0, 1, 64).reshape(4, 4, 4)
    assert m.psnr(a, a) == float("inf")


def test_ssim_matches_scikit_image_7_voxel_gaussian(pair):
    true, pred = pair
    ref = structural_similarity(true, pred, data_range=1.0, gaussian_weights=True,
                                sigma=m.SSIM_SIGMA, use_sample_covariance=False,
                                K1=0.01, K2=0.03)
    assert m.ssim(true, pred) == pytest.approx(ref, abs=1e-10)
    # scikit-image derives a 7-voxel window from this sigma (radius int(3.5 sigma + 0.5) = 3)
    assert 2 * int(3.5 * m.SSIM_SIGMA + 0.5) + 1 == 7


def test_ssim_is_sensitive_to_intensity_scale(pair):
    true, _ = pair
    assert m.ssim(true, true) == pytest.approx(1.0)
    # same structure, half the brightness: PCC is blind to it, SSIM is not
    assert m.pcc(true, 0.5 * true) == pytest.approx(1.0)
    assert m.ssim(true, 0.5 * true) < 0.95


def test_ssim_works_on_volumes_thinner_than_window(rng):
    a = rng.random((3, 16, 16))
    assert m.ssim(a, a) == pytest.approx(1.0)
    assert m.ssim(a, rng.random(a.shape)) < 0.5


def test_pcc_matches_numpy_and_handles_flat_volumes(pair):
    true, pred = pair
    assert m.pcc(true, pred) == pytest.approx(np.corrcoef(true.ravel(), pred.ravel())[0, 1])
    assert m.pcc(true, -true) == pytest.approx(-1.0)
    flat = np.zeros_like(true)
    assert m.pcc(true, flat) == 0.0
    assert np.isfinite(m.pcc(flat, flat))


def test_mae_and_shape_errors():
    a = np.zeros((2, 3, 4))
    assert m.mae(a, a + 0.25) == pytest.approx(0.25)
    with pytest.raises(InputError, match="shapes differ"):
        m.mae(a, np.zeros((2, 3, 5)))


def test_dice_of_shifted_spheres_is_analytic():
    shape = (40, 40, 40)
    a = _ball(shape, (20, 20, 20), 8)
    b = _ball(shape, (20, 20, 24), 8)
    inter = np.logical_and(a, b).sum()
    assert m.dice(a, b) == pytest.approx(2 * inter / (a.sum() + b.sum()))
    # continuous geometry: the lens of two spheres radius r at distance d
    r, d = 8.0, 4.0
    lens = np.pi * (4 * r + d) * (2 * r - d) ** 2 / 12
    assert m.dice(a, b) == pytest.approx(lens / (4 / 3 * np.pi * r**3), abs=0.03)
    assert m.dice(a, a) == 1.0
    assert m.dice(np.zeros(shape), np.zeros(shape)) == 1.0
    assert m.dice(a, np.zeros(shape)) == 0.0


def _labels_2d():
    """Hand-made case: 3 true objects, 3 predicted (one good, one poor, one spurious)."""
    true = np.zeros((1, 20, 30), int)
    pred = np.zeros_like(true)
    true[0, 2:8, 2:8] = 1     # 36 px
    pred[0, 2:8, 3:8] = 5     # 30 px inside it: IoU 30/36
    true[0, 10:16, 2:8] = 2   # 36 px
    pred[0, 10:16, 5:11] = 7  # overlap 18 px: IoU 18/54 = 1/3
    true[0, 2:6, 20:24] = 3   # 16 px, missed
    pred[0, 12:18, 20:26] = 9  # spurious
    return true, pred


def test_match_instances_hand_made_stardist_definitions():
    true, pred = _labels_2d()
    r = m.match_instances(true, pred, iou_threshold=0.5)
    assert (r.n_true, r.n_pred, r.tp, r.fp, r.fn) == (3, 3, 1, 2, 2)
    assert r.precision == pytest.approx(1 / 3)
    assert r.recall == pytest.approx(1 / 3)
    assert r.f1 == pytest.approx(1 / 3)
    assert r.average_precision == pytest.approx(1 / 5)
    assert r.mean_matched_iou == pytest.approx(30 / 36)
    assert r.mean_matched_dice == pytest.approx(2 * 30 / (36 + 30))
    assert r.panoptic_quality == pytest.approx((30 / 36) / (1 + 1 + 1))
    assert r.pairs == ((1, 5, pytest.approx(30 / 36)),)
    low = m.match_instances(true, pred, iou_threshold=0.3)
    assert (low.tp, low.fp, low.fn) == (2, 1, 1)
    assert low.mean_matched_iou == pytest.approx((30 / 36 + 1 / 3) / 2)


def test_hungarian_beats_greedy_assignment():
    # pred A overlaps true 1 best (IoU 7/13) and true 2 a little (3/17); pred B only true 1
    # (3/10). Greedy (best IoU first) pairs A-1 and leaves B unmatched; the optimal
    # assignment finds A-2 and B-1, as StarDist does.
    true = np.zeros((1, 10, 40), int)
    pred = np.zeros_like(true)
    true[0, :, 0:10] = 1
    true[0, :, 10:20] = 2
    pred[0, :, 3:13] = 10
    pred[0, :, 0:3] = 11
    r = m.match_instances(true, pred, iou_threshold=0.1)
    assert r.tp == 2 and r.fn == 0 and r.fp == 0
    assert sorted(p[:2] for p in r.pairs) == [(1, 11), (2, 10)]
    # above 0.5 only A-1 qualifies
    assert m.match_instances(true, pred, iou_threshold=0.5).pairs[0][:2] == (1, 10)


def test_average_precision_thresholds_monotone_and_perfect_case():
    true, pred = _labels_2d()
    ap = m.average_precision(true, pred)
    assert set(ap) == {0.5, 0.75, 0.9}
    assert ap[0.5] == pytest.approx(1 / 5)
    assert ap[0.75] == pytest.approx(1 / 5)  # IoU 0.83 still passes 0.75
    assert ap[0.9] == 0.0
    perfect = m.average_precision(true, true)
    assert all(v == 1.0 for v in perfect.values())


def test_match_instances_empty_images():
    z = np.zeros((4, 4, 4), int)
    r = m.match_instances(z, z)
    assert (r.tp, r.fp, r.fn, r.f1) == (0, 0, 0, 0.0)
    one = z.copy()
    one[1:3, 1:3, 1:3] = 4
    r = m.match_instances(one, z)
    assert (r.tp, r.fn, r.recall) == (0, 1, 0.0)


def test_match_instances_shifted_spheres_known_iou():
    shape = (40, 40, 60)
    true = (_ball(shape, (20, 20, 15), 8) * 1 + _ball(shape, (20, 20, 45), 8) * 2).astype(int)
    a = _ball(shape, (20, 20, 17), 8)
    b = _ball(shape, (20, 20, 45), 8)
    pred = (a * 3 + b * 4).astype(int)
    r = m.match_instances(true, pred)
    assert r.tp == 2
    t1 = true == 1
    iou1 = np.logical_and(t1, a).sum() / np.logical_or(t1, a).sum()
    assert r.mean_matched_iou == pytest.approx((iou1 + 1.0) / 2)
