"""Scoring the segmentation routes on simulated fields: Dice per organelle, cell-instance F1.

Routes: ``network`` (Choi et al.: ``segment-default`` and ``cell-default``), ``watershed_ri``
(the voxel forest on RI features) and, with ``with_fl``, ``watershed_fl`` (the forest on the
nucleus and membrane fluorescence that the ``default`` RI2FL model infers) plus the 2D
lipid-droplet classifier on the inferred droplet channel. ``ri2fl evaluate --segmentation``
runs it.

>>> evaluate_segmentation("sim/manifest.csv", "eval_seg/", split="test")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ORGANELLES", "evaluate_segmentation", "score_segmentation", "summary_markdown"]

log = logging.getLogger(__name__)

#: the organelle masks scored by Dice
ORGANELLES = ("nucleus", "nucleolus", "membrane", "lipid_droplets")


def score_segmentation(sample: Any, with_fl: bool = True,
                       models: dict[str, Any] | None = None) -> dict[str, Any]:
    """Dice per organelle and cell F1 (IoU 0.5) of every route on one paired field.

    ``models`` (from :func:`_load_models`) saves loading the networks again for every field.
    """
    from ..infer import predict_volume
    from ..segment import segment_lipid_droplets_2d, segment_volume
    from .metrics import dice, match_instances

    models = models or _load_models(with_fl)
    nets = {"model": models["organelles"], "cell_model": models["cells"]}
    row: dict[str, Any] = {"n_cells": int(len(np.unique(sample.cell_labels)) - 1)}
    args = (sample.ri, sample.voxel_size_um, sample.medium_index)
    t0 = time.time()
    net = segment_volume(*args, method="network", return_probabilities=True, **nets)
    row["seconds_network"] = round(time.time() - t0, 1)
    segs = {"network": net}
    t0 = time.time()
    # the same field: its domain was checked by the first call
    segs["watershed_ri"] = segment_volume(*args, method="watershed", fl=None,
                                          probabilities=net.probabilities, domain_check=False,
                                          **nets)
    row["seconds_watershed_ri"] = round(time.time() - t0, 1)
    if with_fl:
        fl = predict_volume(sample.ri, sample.voxel_size_um, model=models["fl"],
                            medium_index=sample.medium_index, domain_check=False,
                            targets=["nucleus", "membrane", "lipid_droplets"]).fl
        segs["watershed_fl"] = segment_volume(
            *args, method="watershed", fl={"nucleus": fl["nucleus"], "membrane": fl["membrane"]},
            probabilities=net.probabilities, domain_check=False, **nets)
        ld2d, _ = segment_lipid_droplets_2d(fl["lipid_droplets"], sample.voxel_size_um)
        row["dice_lipid_droplets_2d"] = dice(sample.masks["lipid_droplets"].max(0), ld2d > 0)
    for m in ORGANELLES:
        row[f"dice_{m}"] = dice(sample.masks[m], net.masks[m])
    for name, seg in segs.items():
        match = match_instances(sample.cell_labels, seg.cell_labels, 0.5)
        row[f"f1_{name}"] = match.f1
        row[f"cells_{name}"] = match.n_pred
    return row


def _load_models(with_fl: bool, organelle_model: str = "segment-default",
                 cell_model: str = "cell-default", fl_model: str = "default"
                 ) -> dict[str, Any]:
    """The networks every route uses (shipped names or checkpoint paths), loaded once."""
    from ..infer import load_model
    from ..models import load
    from ..segment.organelles import load_organelle_model

    # segment_volume checks the cell model's task when it is given one
    return {"organelles": load_organelle_model(organelle_model),
            "cells": load(cell_model),
            "fl": load_model(fl_model) if with_fl else None}


def summary_markdown(table: pd.DataFrame) -> str:
    """A table of numbers as Markdown (no extra dependency)."""
    head = ["", *map(str, table.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join([str(idx), *(f"{v:.3f}" for v in row)]) + " |")
    return "\n".join(lines) + "\n"


def evaluate_segmentation(data: str | Path, out_dir: str | Path, split: str | None = "test",
                          per_family: int | None = None, with_fl: bool = True,
                          cell_types: list[str] | None = None,
                          organelle_model: str = "segment-default",
                          cell_model: str = "cell-default",
                          fl_model: str = "default") -> pd.DataFrame:
    """Score every segmentation route on the paired fields of a split.

    Parameters
    ----------
    data : str or Path
        A manifest (``ri2fl simulate``'s) or a folder holding one; the fields need masks and
        cell labels.
    out_dir : str or Path
        Receives ``segmentation.csv`` (one row per field, written after every field) and
        ``segmentation.md`` (means per cell type, then over all fields, and their s.d.).
    split : str or None
        Manifest split (``None``: every field).
    per_family : int, optional
        At most this many fields per cell type.
    with_fl : bool
        Also score the routes that need inferred fluorescence.
    cell_types : list of str, optional
        Only these cell types.
    organelle_model, cell_model, fl_model : str
        The organelle, cell and fluorescence networks (shipped names or checkpoint paths;
        default: the shipped ones).

    Returns
    -------
    DataFrame
        The summary table of ``segmentation.md``.
    """
    from ..data import list_samples
    from ..io import read_paired, write_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, seen = [], {}
    models = _load_models(with_fl, organelle_model, cell_model, fl_model)
    for path, family in list_samples(data, split, cell_types):
        seen[family] = seen.get(family, 0) + 1
        if per_family is not None and seen[family] > per_family:
            continue
        row = {"file": path.name, "cell_type": family,
               **score_segmentation(read_paired(path), with_fl, models)}
        rows.append(row)
        log.info("%s", row)
        # rewritten after every field (ri2fl's own table: same header), atomically
        write_table(pd.DataFrame(rows), out / "segmentation.csv", overwrite=True)
    df = pd.DataFrame(rows)
    cols = [c for c in df.columns if c.startswith(("dice_", "f1_"))]
    summary = df.groupby("cell_type")[cols].mean()
    summary.loc["all (mean)"] = df[cols].mean()
    summary.loc["all (s.d.)"] = df[cols].std()
    (out / "segmentation.md").write_text(summary_markdown(summary))
    return summary
