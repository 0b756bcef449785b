"""Single-cell profiling: features per cell, population statistics, tracking.

- :func:`measure_cells`: one row per cell, >= 65 documented features (morphology, refractive
  index and dry mass, fluorescence per compartment, lipid droplets, texture, neighbours);
  :func:`feature_dictionary` describes every column.
- :func:`zscore`, :func:`embed` (UMAP), :func:`anova_ranking`, :func:`ttests`,
  :func:`track_cells`, :func:`time_courses`: the population analysis.
"""

from .analysis import (
    anova_ranking,
    embed,
    nonredundant_features,
    time_courses,
    track_cells,
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
    "embed",
    "feature_columns",
    "feature_dictionary",
    "measure_cells",
    "nonredundant_features",
    "shape_features",
    "time_courses",
    "track_cells",
    "ttests",
    "zscore",
]
