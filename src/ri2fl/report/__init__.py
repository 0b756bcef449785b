"""Reports of single-cell profiles: figures and one self-contained HTML page.

- :func:`build_report`: feature table (+ optional example fields, known truth, feature
  agreement) -> ``report.html`` with the counts, embedding, statistics by replicate within
  each stratum, box plots, time courses and example projections.
- :mod:`.figures`: the figures on their own (matplotlib ``Figure`` objects, no pyplot).
"""

from .figures import box_plots, embedding_figure, example_figure, time_course_figure
from .html import Agreement, ExampleField, KnownTruth, build_report, default_group

__all__ = ["Agreement", "ExampleField", "KnownTruth", "box_plots", "build_report",
           "default_group", "embedding_figure", "example_figure", "time_course_figure"]
