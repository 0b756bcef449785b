"""The paper's experiments, reproduced on simulated data (see experiments/README.md).

- :mod:`.generalisation` (a): trained on fibroblasts, tested on every family; structures;
- :mod:`.contrasts` (b): RI2FL against BF2FL and DIC2FL with t-tests;
- :mod:`.uncertainty` (c): Spearman correlation of uncertainty and error;
- :mod:`.timelapse` (c, e): nucleus uncertainty through mitosis; bleaching;
- :mod:`.sensitivity` (d): noise, missing cone and medium-index offset of the RI.

Each writes CSV tables, PNG figures, ``results.md`` and ``results.json`` into its output
folder; ``experiments/*.py`` are the commands that run them.
"""
