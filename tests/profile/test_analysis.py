"""Population statistics and tracking on synthetic tables with known structure."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ri2fl.errors import ConfigError
from ri2fl.profile import anova_ranking, embed, time_courses, track_cells, ttests, zscore


def _groups(rng, n=30, shift=1.5):
    """Two conditions; only ``cell_volume_um3`` differs, by ``shift`` s.d."""
    frames = []
    for cond, mu in (("control", 0.0), ("stimulated", shift)):
        frames.append(pd.DataFrame({
            "condition": cond,
            "cell_volume_um3": rng.normal(500 + 50 * mu, 50, n),
            "cell_dry_mass_pg": rng.normal(60, 5, n),
            "cell_ri_mean": rng.normal(1.36, 0.002, n),
        }))
    return pd.concat(frames, ignore_index=True)


def test_zscore_has_zero_mean_unit_sd_and_handles_constants(rng):
    table = _groups(rng).assign(constant=3.0)
    z = zscore(table)
    assert np.allclose(z.drop(columns="constant").mean(), 0, atol=1e-12)
    assert np.allclose(z.drop(columns="constant").std(ddof=0), 1)
    assert (z["constant"] == 0).all()
    assert "condition" not in z.columns


def test_anova_ranks_the_feature_that_differs_first(rng):
    ranking = anova_ranking(_groups(rng), by="condition")
    assert ranking["feature"].iloc[0] == "cell_volume_um3"
    assert ranking["q"].iloc[0] < 1e-4
    assert (ranking["q"] >= ranking["p"] - 1e-15).all()
    # the F-value is scipy's
    t = _groups(np.random.default_rng(0))
    f = stats.f_oneway(*[g["cell_volume_um3"] for _, g in t.groupby("condition")]).statistic
    ranked = anova_ranking(t, "condition").set_index("feature")
    assert ranked.loc["cell_volume_um3", "F"] == pytest.approx(f)


def test_ttests_find_the_true_difference_and_correct_for_multiple_testing(rng):
    result = ttests(_groups(rng), by="condition")
    top = result.iloc[0]
    assert top["feature"] == "cell_volume_um3"
    assert top["p"] < 1e-4
    assert top["mean_b"] > top["mean_a"]
    assert abs(top["cohen_d"]) > 1
    null = result[result["feature"] != "cell_volume_um3"]
    assert (null["q"] > 0.01).all()
    assert np.allclose(result["q"], stats.false_discovery_control(result["p"]))


def test_null_groups_give_few_discoveries(rng):
    table = _groups(rng, n=20, shift=0.0)
    assert (ttests(table, by="condition")["q"] > 0.05).all()


def test_missing_group_column_is_a_config_error(rng):
    with pytest.raises(ConfigError, match="condition"):
        anova_ranking(_groups(rng).drop(columns="condition"), by="condition")


def test_embedding_separates_groups_and_falls_back_to_pca(rng):
    table = _groups(rng, n=25, shift=6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emb = embed(table, n_neighbors=5, min_dist=0.5)
    assert emb.attrs["method"] == "umap"
    assert emb.shape == (50, 2) and np.isfinite(emb.to_numpy()).all()
    # the two conditions land apart: nearest neighbours in the embedding share the group
    xy = emb.to_numpy()
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    same = (table["condition"].to_numpy()[d.argmin(1)] == table["condition"].to_numpy())
    assert same.mean() > 0.9
    with pytest.warns(UserWarning, match="principal components"):
        small = embed(table.iloc[:6])
    assert small.attrs["method"] == "pca"


def _moving_blobs(rng, n_cells=5, n_frames=4, step=1.0):
    start = rng.uniform(0, 60, (n_cells, 3))
    velocity = rng.normal(0, step, (n_cells, 3))
    rows = []
    for t in range(n_frames):
        order = rng.permutation(n_cells)  # labels are not stable from frame to frame
        for label, i in enumerate(order, start=1):
            z, y, x = start[i] + t * velocity[i]
            rows.append({"frame": t, "label": label, "truth": i, "centroid_z_um": z,
                         "centroid_y_um": y, "centroid_x_um": x,
                         "cell_volume_um3": 400.0 + 10 * t + i})
    return pd.DataFrame(rows)


def test_tracking_follows_moving_cells(rng):
    table = _moving_blobs(rng)
    tracked = track_cells(table, max_distance_um=5.0)
    # each true cell keeps one track id, and each track id is one true cell
    assert tracked.groupby("truth")["track_id"].nunique().eq(1).all()
    assert tracked.groupby("track_id")["truth"].nunique().eq(1).all()
    assert tracked["track_id"].nunique() == 5


def test_tracking_refuses_long_jumps_and_separates_positions(rng):
    table = _moving_blobs(rng, n_cells=2, n_frames=2)
    table.loc[table["frame"] == 1, "centroid_x_um"] += 100.0
    assert track_cells(table, max_distance_um=5.0)["track_id"].nunique() == 4
    two = pd.concat([_moving_blobs(rng, 3, 3).assign(position=p) for p in (0, 1)])
    assert track_cells(two, max_distance_um=5.0)["track_id"].nunique() == 6


def test_time_courses_average_per_frame_and_group(rng):
    table = pd.concat([_moving_blobs(rng).assign(condition=c) for c in ("a", "b")])
    tc = time_courses(table, ["cell_volume_um3"], by="condition")
    a = tc[tc["group"] == "a"].set_index("frame")
    assert list(a.index) == [0, 1, 2, 3]
    assert a.loc[3, "mean"] - a.loc[0, "mean"] == pytest.approx(30.0)
    assert (a["n"] == 5).all()


def test_nonredundant_features_drop_repeats_and_constants(rng):
    from ri2fl.profile import nonredundant_features

    table = _groups(rng).assign(
        cell_volume_ml=lambda t: t["cell_volume_um3"] * 1e-12,  # the same, other unit
        cell_inverse_volume=lambda t: -t["cell_volume_um3"],    # anti-correlated repeat
        constant=1.0)
    kept = nonredundant_features(table)
    assert kept == ["cell_volume_um3", "cell_dry_mass_pg", "cell_ri_mean"]
