"""Structure detection and centroid matching on synthetic blobs with known displacements."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.errors import ConfigError
from ri2fl.evaluate.structures import detect_structures, match_centroids, match_structures

VS = (0.2, 0.15, 0.15)
SHAPE = (24, 72, 72)


def _balls(centres_um, radius_um, amps):
    grid = [np.arange(n) * v for n, v in zip(SHAPE, VS, strict=True)]
    zz, yy, xx = np.meshgrid(*grid, indexing="ij", sparse=True)
    out = np.zeros(SHAPE, np.float32)
    for (cz, cy, cx), a in zip(centres_um, amps, strict=True):
        out[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius_um**2] += a
    return out


@pytest.fixture
def droplets(rng):
    g = np.array([(z, y, x) for z in (1.5, 3.3) for y in (2.0, 5.0, 8.0) for x in (2.0, 5.0, 8.0)])
    centres = g + rng.uniform(-0.3, 0.3, g.shape)
    amps = rng.uniform(0.3, 1.0, len(centres))
    return centres, amps


def test_detects_every_droplet_at_its_centroid(droplets):
    centres, amps = droplets
    s = detect_structures(_balls(centres, 0.4, amps), VS, "lipid_droplets")
    assert len(s) == len(centres)
    pairs, dist = match_centroids(centres, s.centroids_um, 0.5)
    assert len(pairs) == len(centres)
    assert dist.max() < 0.05  # sub-voxel: voxels are 0.15-0.2 µm
    order = pairs[np.argsort(pairs[:, 0]), 1]
    assert np.corrcoef(s.intensity[order], amps)[0, 1] > 0.99


@pytest.mark.parametrize("shift_um", [0.0, 0.3, 0.6])
def test_known_displacement_is_recovered(droplets, rng, shift_um):
    centres, amps = droplets
    true = _balls(centres, 0.4, amps)
    pred = _balls(centres + np.array([0, shift_um, 0]), 0.4, 0.8 * amps)
    pred += 0.02 * rng.standard_normal(SHAPE).astype(np.float32)
    r = match_structures(true, pred, VS, "lipid_droplets")
    assert r.n_true == len(centres)
    assert r.fraction_matched == 1.0
    assert r.mean_distance_um == pytest.approx(shift_um, abs=0.05)
    # predicted intensities are 0.8x the true ones: perfectly correlated
    assert r.intensity_r > 0.95


def test_distance_cap_and_missing_structures(droplets):
    centres, amps = droplets
    true = _balls(centres, 0.4, amps)
    far = match_structures(true, _balls(centres + np.array([0, 1.2, 0]), 0.4, amps), VS,
                           "lipid_droplets", max_distance_um=1.0)
    assert far.n_matched == 0 and far.fraction_matched == 0.0
    # drop a third of the droplets and add 2 spurious ones
    keep = np.arange(len(centres)) % 3 != 0
    extra = np.array([[2.4, 10.0, 10.0], [2.4, 10.0, 3.5]])
    pred = _balls(np.vstack([centres[keep], extra]), 0.4,
                  np.concatenate([amps[keep], [0.8, 0.8]]))
    r = match_structures(true, pred, VS, "lipid_droplets")
    assert r.n_matched == keep.sum()
    assert r.fraction_matched == pytest.approx(keep.mean())
    assert r.precision == pytest.approx(keep.sum() / (keep.sum() + 2))
    assert r.fraction_within(0.1) == pytest.approx(keep.mean())
    hit = r.matched_within(0.1)
    assert hit.shape == r.true_volume_um3.shape == (r.n_true,) and hit.sum() == keep.sum()
    ball = 4 / 3 * np.pi * 0.4**3
    assert np.all((r.true_volume_um3 > 0.5 * ball) & (r.true_volume_um3 < 4 * ball))


def test_nucleolus_kind_finds_large_blobs():
    centres = np.array([[2.4, 3.0, 3.0], [2.4, 7.0, 7.5]])
    true = _balls(centres, 1.0, [1.0, 0.6])
    r = match_structures(true, _balls(centres + np.array([0, 0, 0.45]), 1.0, [0.9, 0.5]), VS,
                         "nucleolus")
    assert (r.n_true, r.n_matched) == (2, 2)
    assert r.mean_distance_um == pytest.approx(0.45, abs=0.08)


def test_match_centroids_is_optimal_not_greedy():
    true = np.array([[0, 0, 0], [0, 0, 1.0]])
    pred = np.array([[0, 0, 0.55], [0, 0, 1.6]])
    # greedy takes the closest pair true[1]-pred[0] (0.45 µm) and strands true[0] (pred[1]
    # is 1.6 µm away); the optimal assignment under a 0.62 µm cap keeps both
    pairs, dist = match_centroids(true, pred, 0.62)
    assert sorted(map(tuple, pairs)) == [(0, 0), (1, 1)]
    assert dist.sum() == pytest.approx(1.15)
    assert len(match_centroids(true, np.zeros((0, 3)), 1.0)[0]) == 0


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown structure kind"):
        detect_structures(np.zeros(SHAPE), VS, "golgi")


def test_noise_only_volume_has_no_structures(rng):
    noise = np.abs(0.01 * rng.standard_normal(SHAPE)).astype(np.float32)
    for kind in ("lipid_droplets", "nucleolus", "mitochondria"):
        assert len(detect_structures(noise, VS, kind)) == 0
    r = match_structures(noise, noise, VS)
    assert r.n_true == 0 and np.isnan(r.fraction_matched)


def test_a_uniformly_dimmer_prediction_finds_the_same_structures(droplets):
    centres, amps = droplets
    true = _balls(centres, 0.4, amps)
    dim = 0.3 * true
    each = match_structures(true, dim, VS, "lipid_droplets")
    assert each.fraction_matched == 1.0 and each.intensity_r > 0.99
    # with the true volume's threshold the dim copy loses its fainter droplets
    same = match_structures(true, dim, VS, "lipid_droplets", threshold="true")
    assert same.fraction_matched < 0.8
    # an empty prediction has no structures, whatever the threshold
    empty = match_structures(true, np.zeros_like(true), VS, "lipid_droplets")
    assert empty.n_pred == 0 and empty.fraction_matched == 0.0
    with pytest.raises(ConfigError, match="threshold"):
        match_structures(true, dim, VS, threshold="otsu")


def test_matched_by_size_counts_per_volume_class():
    import pandas as pd

    from ri2fl.evaluate.structures import matched_by_size

    records = pd.DataFrame({"target": ["lipid_droplets"] * 4,
                            "volume_um3": [0.2, 0.3, 1.5, 5.0],
                            "matched_0.5um": [False, True, True, True]})
    table = matched_by_size(records).set_index("volume_class_um3")
    assert table.loc["[0.0, 0.5)", "n_true"] == 2
    assert table.loc["[0.0, 0.5)", "matched_0.5um"] == 0.5
    assert table.loc["[2.0, inf)", "matched_0.5um"] == 1.0
    assert "[0.5, 1.0)" not in table.index  # empty classes are left out


def test_matched_fraction_ci_one_fov_is_wilson():
    from scipy.stats import binomtest

    from ri2fl.evaluate.structures import matched_fraction_ci

    ref = binomtest(8, 10).proportion_ci(method="wilson")
    assert matched_fraction_ci([8], [10]) == pytest.approx((ref.low, ref.high))
    assert np.isnan(matched_fraction_ci([0], [0])).all()


def test_matched_fraction_ci_covers_the_pooled_fraction_and_narrows_with_more_fovs():
    from ri2fl.evaluate.structures import matched_fraction_ci

    rng = np.random.default_rng(3)
    true = rng.integers(5, 30, 40)
    matched = rng.binomial(true, 0.7)
    pooled = matched.sum() / true.sum()
    low, high = matched_fraction_ci(matched, true)
    assert low < pooled < high and low > 0.6 and high < 0.8
    low8, high8 = matched_fraction_ci(matched[:8], true[:8])
    assert high8 - low8 > high - low
    # FOVs that all agree leave no doubt between them
    assert matched_fraction_ci([3, 6, 9], [3, 6, 9]) == (1.0, 1.0)


def test_matched_fraction_difference_ci_is_paired_over_fovs():
    from ri2fl.evaluate.structures import matched_fraction_difference_ci

    true = np.array([10, 20, 15, 12, 8, 30])
    base = np.array([6, 12, 9, 7, 5, 18])
    # one more structure found in every FOV: a consistent gain, clear of zero
    diff, low, high = matched_fraction_difference_ci(base + 1, base, true)
    assert diff == pytest.approx(6 / true.sum())
    assert 0 < low <= diff <= high
    # gains and losses that cancel out: the interval straddles zero
    diff, low, high = matched_fraction_difference_ci(base + np.array([3, -3] * 3), base, true)
    assert diff == 0 and low < 0 < high


def test_overlap_with_prediction_tells_joined_from_own_structures():
    from ri2fl.evaluate.structures import overlap_with_prediction

    true = np.zeros((1, 1, 12), np.int32)
    true[..., 0:2], true[..., 3:5], true[..., 6:8], true[..., 9:11] = 1, 2, 3, 4
    pred = np.zeros_like(true)
    pred[..., 1:4] = 1  # one predicted structure over true 1 and 2
    pred[..., 7:9] = 2  # one over true 3 alone; true 4 not painted
    overlapped, joined = overlap_with_prediction(true, pred)
    assert overlapped.tolist() == [True, True, True, False]
    assert joined.tolist() == [True, True, False, False]


def test_misses_by_cause_splits_the_missed_droplets(droplets):
    import pandas as pd

    from ri2fl.evaluate.structures import misses_by_cause, structure_records

    centres, amps = droplets
    moved = centres.copy()
    moved[0, 2] += 0.7  # overlaps its true droplet, centroid 0.7 µm off
    keep = np.arange(len(centres)) != 1  # droplet 1 not painted
    r = match_structures(_balls(centres, 0.4, amps), _balls(moved[keep], 0.4, amps[keep]), VS,
                         "lipid_droplets")
    table = misses_by_cause(pd.DataFrame(structure_records(r)), by=("kind",)).iloc[0]
    n = len(centres)
    assert table["n_true"] == n
    assert table["matched"] == pytest.approx((n - 2) / n)
    assert table["missed_not_painted"] == pytest.approx(1 / n)
    assert table["missed_displaced"] == pytest.approx(1 / n)
    assert table["missed_joined"] == 0
