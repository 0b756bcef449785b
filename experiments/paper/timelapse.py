"""Experiments on simulated time-lapses: (c, second half) nucleus uncertainty over mitosis and
(e) bleaching of the real fluorescence against the stable inferred fluorescence.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paper.common import Timer, load_model, markdown_table, write_csv, write_json
from ri2fl.evaluate.figures import line_figure
from ri2fl.evaluate.metrics import pcc
from ri2fl.evaluate.runner import model_predictor
from ri2fl.io.paired import PairedSample
from ri2fl.progress import progress

TIMELAPSE_SHAPE: tuple[int, int, int] = (32, 160, 160)
#: Mean intensity (fixed scale) below which a channel counts as empty in the bleaching ratios.
MIN_MEAN_FOR_RATIO = 0.005


def _as_sample(frame: Any) -> PairedSample:
    if isinstance(frame, PairedSample):
        return frame
    return frame.to_paired()


def timelapse_frames(cell_type: str, seed: int, n_frames: int, shape: Sequence[int],
                     event: str | None = None, bleach_half_life_frames: float | None = None
                     ) -> Iterator[tuple[int, PairedSample]]:
    """Frames (index, paired sample) of a simulated time-lapse from ``ri2fl.simulate``.

    Uses ``simulate_timelapse`` (drift, motion, mitosis, bleaching), passing only the
    options it accepts.
    """
    from ri2fl import simulate

    fn = simulate.simulate_timelapse
    params = inspect.signature(fn).parameters
    opts: dict[str, Any] = {"cell_type": cell_type, "seed": seed, "shape": tuple(shape)}
    for name in ("n_frames", "frames", "n_timepoints", "k"):
        if name in params:
            opts[name] = n_frames
            break
    if event is not None:
        opts["event"] = event
    # None switches bleaching off (the simulator's default bleaches)
    opts["bleach_half_life_frames"] = bleach_half_life_frames
    tl = fn(**{k: v for k, v in opts.items() if k in params})
    frames = getattr(tl, "frames", tl)
    if isinstance(frames, (list, tuple)):
        for i, f in enumerate(frames):
            yield i, _as_sample(f)
        return
    for i in range(np.shape(tl.ri)[0]):  # arrays with a leading time axis
        yield i, PairedSample(ri=tl.ri[i], fl={k: v[i] for k, v in tl.fl.items()},
                              voxel_size_um=tl.voxel_size_um, medium_index=tl.medium_index,
                              masks={k: v[i] for k, v in getattr(tl, "masks", {}).items()})


def _cell_mask(sample: PairedSample) -> np.ndarray:
    mask = sample.masks.get("membrane")
    if mask is None and sample.cell_labels is not None:
        mask = sample.cell_labels > 0
    return mask if mask is not None and mask.any() else np.ones(sample.ri.shape, bool)


def _central_cells(sample: PairedSample, radius_um: float = 5.0) -> np.ndarray:
    """Mask of the cells reaching within ``radius_um`` of the field's lateral centre: the
    simulator puts the dividing cell there (and its daughters stay near)."""
    labels = sample.cell_labels
    if labels is None or not labels.any():
        return _cell_mask(sample)
    _, ny, nx = labels.shape
    ry = max(1, int(radius_um / sample.voxel_size_um[1]))
    rx = max(1, int(radius_um / sample.voxel_size_um[2]))
    window = labels[:, max(0, ny // 2 - ry):ny // 2 + ry, max(0, nx // 2 - rx):nx // 2 + rx]
    ids = np.unique(window)
    ids = ids[ids > 0]
    return np.isin(labels, ids) if ids.size else _cell_mask(sample)


def mitosis(out_dir: str | Path, model: str = "default", cell_type: str = "fibroblast",
            seed: int = 100_500, n_frames: int = 8, shape: Sequence[int] = TIMELAPSE_SHAPE,
            tta: int = 4, mc: int = 4, batch_size: int = 2) -> dict[str, Any]:
    """Nucleus uncertainty frame by frame through a mitosis.

    Means are taken inside the central cells (the dividing cell, then its daughters); the
    mean uncertainty of the other targets there is the control. ``nucleus_uncertainty_relative``
    divides the nucleus uncertainty by the mean inferred nucleus signal there (the passes'
    coefficient of variation): condensed chromosomes hold less signal than a nucleus, so the
    absolute s.d. can fall while the prediction grows less certain relative to what it predicts.
    """
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    predict = model_predictor(load_model(model), tta=tta, mc=mc, batch_size=batch_size)
    rows = []
    with Timer() as timer:
        for i, sample in progress(timelapse_frames(cell_type, seed, n_frames, shape,
                                                   event="mitosis"), desc="mitosis"):
            maps = predict(sample)
            cell = _central_cells(sample)
            unc = maps.uncertainty("nucleus")
            true, pred = sample.fl["nucleus"], maps.fl["nucleus"]
            nucleus_unc, signal = float(unc[cell].mean()), float(np.mean(pred[cell]))
            rows.append({"frame": i, "cells": str(sample.attrs.get("variants", "")),
                         "nucleus_uncertainty": nucleus_unc,
                         "nucleus_uncertainty_relative": nucleus_unc / signal
                         if signal > 0 else np.nan,
                         "nucleus_uncertainty_data": float(maps.uncertainty_data["nucleus"][cell]
                                                           .mean()) if tta else np.nan,
                         "nucleus_uncertainty_model": float(
                             maps.uncertainty_model["nucleus"][cell].mean()) if mc else np.nan,
                         "nucleus_pcc": pcc(true, pred),
                         "mean_uncertainty_other_targets": float(np.mean(
                             [maps.uncertainty(t)[cell].mean() for t in maps.fl
                              if t != "nucleus"]))})
    table = pd.DataFrame(rows)
    write_csv(table, out_dir / "mitosis.csv")
    line_figure(table["frame"], {"nucleus": table["nucleus_uncertainty"],
                                 "other targets (mean)": table["mean_uncertainty_other_targets"]},
                out_dir / "figures" / "mitosis_uncertainty.png", "frame",
                "mean uncertainty in the dividing cell",
                title="uncertainty through a simulated mitosis")
    first = float(table["nucleus_uncertainty"].iloc[0])
    peak = int(table["nucleus_uncertainty"].idxmax())
    summary = {"cell_type": cell_type, "seed": seed, "n_frames": len(table), "tta": tta,
               "mc": mc, "first_frame_uncertainty": first,
               "peak_frame": int(table["frame"].iloc[peak]),
               "peak_over_first": float(table["nucleus_uncertainty"].max() / first)
               if first > 0 else None, "seconds": timer.seconds}
    write_json(summary, out_dir / "mitosis.json")
    (out_dir / "mitosis.md").write_text(markdown_table(table, 4) + "\n")
    return summary


def relative_to_first_frame(table: pd.DataFrame, min_mean: float = MIN_MEAN_FOR_RATIO
                            ) -> pd.DataFrame:
    """Add ``true_relative`` / ``inferred_relative``: each mean over its frame-0 value.

    ``table`` has columns frame, target, true_mean, inferred_mean. A target whose TRUE mean at
    frame 0 is below ``min_mean`` holds (almost) nothing and gets no ratio in either column,
    so that both columns average over the same targets.
    """
    table = table.copy()
    frame0 = table[table["frame"] == 0].set_index("target")
    present = frame0["true_mean"] > min_mean
    for col in ("true_mean", "inferred_mean"):
        first = frame0[col].where(present & (frame0[col] > 0))
        table[col.replace("_mean", "_relative")] = table[col] / table["target"].map(first)
    return table


def bleaching(out_dir: str | Path, model: str = "default", cell_type: str = "fibroblast",
              seed: int = 100_600, n_frames: int = 8, half_life_frames: float = 4.0,
              shape: Sequence[int] = TIMELAPSE_SHAPE, batch_size: int = 2) -> dict[str, Any]:
    """Mean true and inferred fluorescence in the cells, per frame and target, relative to
    frame 0: the simulated real fluorescence bleaches, the one inferred from RI does not."""
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    predict = model_predictor(load_model(model), batch_size=batch_size)
    rows = []
    with Timer() as timer:
        for i, sample in progress(timelapse_frames(cell_type, seed, n_frames, shape,
                                                   bleach_half_life_frames=half_life_frames),
                                  desc="bleaching"):
            maps = predict(sample)
            cell = _cell_mask(sample)
            for t in maps.fl:
                if t in sample.fl:
                    rows.append({"frame": i, "target": t,
                                 "true_mean": float(sample.fl[t][cell].mean()),
                                 "inferred_mean": float(maps.fl[t][cell].mean())})
    table = relative_to_first_frame(pd.DataFrame(rows))
    write_csv(table, out_dir / "bleaching.csv")
    per_frame = table.groupby("frame")[["true_relative", "inferred_relative"]].mean()
    expected = 0.5 ** (per_frame.index / half_life_frames)
    line_figure(per_frame.index, {"real (simulated) fluorescence": per_frame["true_relative"],
                                  "inferred from RI": per_frame["inferred_relative"],
                                  "expected bleaching": expected},
                out_dir / "figures" / "bleaching.png", "frame",
                "mean intensity in cells / frame 0", title="bleaching over a time-lapse")
    last = table[table["frame"] == table["frame"].max()]
    summary = {"cell_type": cell_type, "seed": seed, "n_frames": int(table["frame"].nunique()),
               "half_life_frames": half_life_frames,
               "last_frame_true_relative": float(last["true_relative"].mean()),
               "last_frame_inferred_relative": float(last["inferred_relative"].mean()),
               "expected_true_relative": 0.5 ** (table["frame"].max() / half_life_frames),
               "seconds": timer.seconds}
    write_json(summary, out_dir / "bleaching.json")
    wide = last[["target", "true_relative", "inferred_relative"]]
    (out_dir / "bleaching.md").write_text(markdown_table(wide, 3) + "\n")
    return summary
