"""Single-cell profiling: features per cell, population statistics, tracking.

- :func:`measure_cells`: one row per cell, >= 65 documented features (morphology, refractive
  index and dry mass, fluorescence per compartment, lipid droplets, texture, neighbours);
  :func:`feature_dictionary` describes every column.
- :func:`zscore`, :func:`embed` (UMAP), :func:`anova_ranking`, :func:`ttests`,
  :func:`track_cells`, :func:`time_courses`: the population analysis.
- :func:`compare_conditions` (replicates as units, strata never pooled, effect sizes with
  confidence intervals, Benjamini-Hochberg q), :func:`collapse_tracks`,
  :func:`track_slopes`, :func:`false_positive_rate`, :func:`group_counts`: statistics of a
  designed experiment.
"""

from .analysis import (
    anova_ranking,
    collapse_tracks,
    compare_conditions,
    embed,
    false_positive_rate,
    group_counts,
    nonredundant_features,
    time_courses,
    track_cells,
    track_slopes,
    ttests,
    zscore,
)
from .features import (
    META_COLUMNS,
    METADATA_COLUMNS,
    feature_columns,
    feature_dictionary,
    measure_cells,
    shape_features,
)

__all__ = [
    "METADATA_COLUMNS",
    "META_COLUMNS",
    "anova_ranking",
    "collapse_tracks",
    "compare_conditions",
    "embed",
    "false_positive_rate",
    "feature_columns",
    "feature_dictionary",
    "group_counts",
    "measure_cells",
    "nonredundant_features",
    "shape_features",
    "time_courses",
    "track_cells",
    "track_slopes",
    "ttests",
    "zscore",
]
