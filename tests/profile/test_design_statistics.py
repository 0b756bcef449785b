"""Statistics of a designed experiment, on synthetic tables whose truth is known.

Cells are nested in fields (the replicates), tracks are one cell each, cell types are
strata: each test fails if pseudo-replication, pooling or a test on too few units came back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ri2fl.profile import (
    collapse_tracks,
    compare_conditions,
    false_positive_rate,
    group_counts,
    track_slopes,
    ttests,
)


def _experiment(rng, *, fields=6, cells=8, effect=1.0, field_sd=0.0, n_null=0,
                cell_type="macrophage", baseline=0.0):
    """Fields of cells in two conditions; ``signal`` shifts by ``effect`` cell s.d. in the
    stimulated fields; every feature has a random field offset of ``field_sd`` s.d."""
    rows = []
    for cond in ("control", "stimulated"):
        for k in range(fields):
            offsets = rng.normal(0, field_sd, n_null + 1)
            for _ in range(cells):
                row = {"cell_type": cell_type, "condition": cond,
                       "field": f"{cell_type}_{cond}_{k}",
                       "signal": baseline + offsets[0] + rng.normal()
                       + (effect if cond == "stimulated" else 0.0)}
                row.update({f"null_{j}": offsets[j + 1] + rng.normal() for j in range(n_null)})
                rows.append(row)
    return pd.DataFrame(rows)


def test_known_effect_comes_out_with_its_sign_size_and_interval(rng):
    table = _experiment(rng, effect=1.5)
    res = compare_conditions(table, within="cell_type", replicate="field",
                             reference="control").set_index("feature")
    row = res.loc["signal"]
    assert row["tested"] and row["p"] < 0.01
    assert row["difference"] > 0 and row["ci_low"] < 1.5 < row["ci_high"]
    assert row["ci_low"] > 0  # the interval excludes no effect
    # n is what a user would count: 48 cells, 6 fields per condition
    assert (row["n_cells_a"], row["n_replicates_a"]) == (48, 6)


def test_field_effects_do_not_flood_the_ranking(rng):
    """Pseudo-replication: cells of one field share its offset; a cell-level test calls
    most null features significant, the field-level test about alpha of them."""
    table = _experiment(rng, fields=6, cells=15, effect=4.0, field_sd=1.0, n_null=60)
    nulls = [f"null_{j}" for j in range(60)]
    naive = ttests(table, "condition", columns=nulls)
    assert (naive["q"] < 0.05).mean() > 0.3  # what the old report did
    res = compare_conditions(table, within="cell_type", replicate="field")
    fpr = false_positive_rate(res, touched=["signal"])
    assert fpr["n_untouched"].iloc[0] == 60
    assert fpr["false_positive_rate"].iloc[0] <= 0.05
    assert fpr["detected"].iloc[0] == 1


def test_time_points_of_a_track_are_one_cell_not_replicates(rng):
    base = _experiment(rng, fields=4, cells=5, effect=1.0)
    base["track_id"] = np.arange(len(base))
    base["frame"] = 0
    # the same cells imaged three times: identical in every frame
    lapse = pd.concat([base.assign(frame=t) for t in range(3)], ignore_index=True)
    one = compare_conditions(base, within="cell_type").set_index("feature").loc["signal"]
    three = compare_conditions(lapse, within="cell_type").set_index("feature").loc["signal"]
    assert three["n_cells_a"] == one["n_cells_a"] == 20
    assert three["p"] == pytest.approx(one["p"])
    assert len(collapse_tracks(lapse)) == len(base)
    counts = group_counts(lapse, ["condition"])
    assert list(counts["cells"]) == [20, 20]


def test_too_few_replicates_are_not_tested_and_say_so(rng):
    table = _experiment(rng, fields=2, cells=30, effect=3.0)
    res = compare_conditions(table, replicate="field")
    assert not res["tested"].any()
    assert res["p"].isna().all() and res["q"].isna().all()
    assert res["note"].str.contains("not tested: n = 2 vs 2").all()


def test_cell_types_are_compared_within_never_pooled(rng):
    """HEK cells are 5 s.d. larger and only macrophages respond; pooling the types (more
    HEK cells in one condition) would make a difference of the mixture."""
    mac = _experiment(rng, effect=1.5, cell_type="macrophage")
    hek = _experiment(rng, effect=0.0, cell_type="hek293", baseline=5.0)
    hek = hek[~((hek["condition"] == "stimulated") & hek["field"].str.endswith(("0", "1")))]
    res = compare_conditions(pd.concat([mac, hek]), within="cell_type",
                             replicate="field").set_index(["stratum", "feature"])
    assert set(res.index.get_level_values("stratum")) == {"macrophage", "hek293"}
    assert res.loc[("macrophage", "signal"), "p"] < 0.01
    assert res.loc[("hek293", "signal"), "p"] > 0.01
    assert res.loc[("hek293", "signal"), "n_replicates_b"] == 4


def test_q_values_are_benjamini_hochberg_over_the_tests(rng):
    res = compare_conditions(_experiment(rng, n_null=10), replicate="field")
    assert np.allclose(res["q"], stats.false_discovery_control(res["p"]))


def test_track_slopes_give_one_rate_per_cell(rng):
    rows = [{"track_id": i, "position": "a", "time_s": t * 1800.0, "condition": "x",
             "cell_volume_um3": 100.0 + 10.0 * i * t / 2}  # +10 i µm³ per hour
            for i in range(4) for t in range(3)]
    rows.append({"track_id": 9, "position": "a", "time_s": 0.0, "condition": "x",
                 "cell_volume_um3": 5.0})  # seen in one frame only: left out
    slopes = track_slopes(pd.DataFrame(rows)).set_index("track_id")
    assert list(slopes.index) == [0, 1, 2, 3]
    assert slopes["cell_volume_um3"].to_numpy() == pytest.approx([0, 10, 20, 30])
