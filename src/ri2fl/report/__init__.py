"""Reports of single-cell profiles: figures and one self-contained HTML page.

- :func:`build_report`: feature table (+ optional example fields) -> ``report.html`` with
  the embedding, ANOVA ranking, box plots, t-tests, time courses and example projections.
- :mod:`.figures`: the figures on their own (matplotlib ``Figure`` objects, no pyplot).
"""

from .figures import box_plots, embedding_figure, example_figure, time_course_figure
from .html import ExampleField, build_report, default_group

__all__ = ["ExampleField", "box_plots", "build_report", "default_group", "embedding_figure",
           "example_figure", "time_course_figure"]
