"""Experiment (d): sensitivity of the inference to RI reconstruction error.

From the TRUE RI of held-out simulated FOVs, tomograms are reconstructed again with one knob
turned at a time, and the model's PCC / SSIM against the true fluorescence is measured:

- noise: standard deviation of the reconstruction noise in Δn (nominal 6e-4);
- missing cone: the illumination NA (nominal 1.08); a smaller NA leaves a wider cone of
  missing axial frequencies (stronger axial elongation and RI underestimation);
- medium-index offset: a constant added to the reconstructed RI (a wrong medium index or a
  phase-unwrapping offset), while the prediction assumes the recorded medium index.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paper.common import (
    SMALL_SHAPE,
    Timer,
    load_model,
    make_fovs,
    markdown_table,
    write_csv,
    write_json,
)
from ri2fl.constants import NA_ILLUMINATION, RI_CLIP
from ri2fl.evaluate.figures import line_figure
from ri2fl.evaluate.runner import find_fovs, model_predictor, score_fov
from ri2fl.io.paired import read_paired
from ri2fl.progress import progress

NOMINAL_NOISE = 6e-4
NOISE_LEVELS = (0.0, 6e-4, 2e-3, 5e-3)
NA_ILL_LEVELS = (NA_ILLUMINATION, 0.8, 0.5, 0.2)
OFFSET_LEVELS = (-0.004, -0.002, 0.0, 0.002, 0.004)


def reconstruct(ri_true: np.ndarray, voxel_size_um: Sequence[float], medium_index: float,
                noise_std: float = NOMINAL_NOISE, na_ill: float = NA_ILLUMINATION,
                seed: int = 0) -> np.ndarray:
    """The simulator's fast tomograph applied to a true RI, with chosen noise and NA."""
    from ri2fl.simulate.optics import reconstruct_fast

    dn = np.asarray(ri_true, np.float32) - np.float32(medium_index)
    rec = reconstruct_fast(dn, tuple(voxel_size_um), medium_index, noise_std=noise_std,
                           rng=np.random.default_rng(seed), na_ill=na_ill)
    return np.clip(np.float32(medium_index) + rec, *RI_CLIP).astype(np.float32)


def perturbations(sample: Any, seed: int) -> list[tuple[str, float, np.ndarray]]:
    """(knob, level, perturbed RI) for every level of every knob."""
    vs, n_m = sample.voxel_size_um, sample.medium_index
    ri_true = sample.extra["ri_true"]
    out = [("noise_std", s, reconstruct(ri_true, vs, n_m, noise_std=s, seed=seed))
           for s in NOISE_LEVELS]
    out += [("na_illumination", na, reconstruct(ri_true, vs, n_m, na_ill=na, seed=seed))
            for na in NA_ILL_LEVELS if na != NA_ILLUMINATION]
    base = reconstruct(ri_true, vs, n_m, seed=seed)
    out.append(("na_illumination", NA_ILLUMINATION, base))
    out += [("medium_offset", d, np.clip(base + np.float32(d), *RI_CLIP).astype(np.float32))
            for d in OFFSET_LEVELS]
    return out


def run(out_dir: str | Path, model: str = "default", cell_types: Sequence[str] = ("fibroblast",),
        n_per_type: int = 2, shape: Sequence[int] = SMALL_SHAPE,
        data_dir: str | Path | None = None, batch_size: int = 2) -> dict[str, Any]:
    """Run every perturbation on held-out FOVs; writes sensitivity.csv, figures, results.md."""
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    manifest = make_fovs(data_dir or out_dir / "data", cell_types, n_per_type, shape)
    net = load_model(model)
    predict = model_predictor(net, batch_size=batch_size)
    rows = []
    with Timer() as timer:
        for fov in find_fovs(manifest, split="test"):
            sample = read_paired(fov.path)
            for knob, level, ri in progress(perturbations(sample, fov.seed or 0),
                                            desc=f"perturb {fov.fov}"):
                sample.ri = ri
                for row in score_fov(sample, predict(sample), list(sample.fl), structures=False):
                    rows.append({"fov": fov.fov, "cell_type": fov.cell_type, "knob": knob,
                                 "level": level, **row})
    table = pd.DataFrame(rows)
    write_csv(table, out_dir / "sensitivity_per_fov.csv")
    mean = (table.groupby(["knob", "level", "target"], sort=False)[["pcc", "ssim"]].mean()
            .reset_index())
    write_csv(mean, out_dir / "sensitivity.csv")
    md = [f"Model `{model}`; {table['fov'].nunique()} held-out FOVs ({', '.join(cell_types)}, "
          f"{tuple(shape)} voxels) reconstructed again from the true RI with one knob changed; "
          f"PCC averaged over FOVs ({timer.seconds:.0f} s).", ""]
    for knob, g in mean.groupby("knob", sort=False):
        wide = g.pivot(index="level", columns="target", values="pcc")
        wide = wide[[t for t in dict.fromkeys(g["target"])]].reset_index()
        wide.insert(1, "mean", wide.drop(columns="level").mean(axis=1))
        md += [f"**{knob}** (PCC):", "", markdown_table(wide), ""]
        line_figure(wide["level"], {t: wide[t] for t in wide.columns if t not in ("level",)},
                    out_dir / "figures" / f"sensitivity_{knob}.png", knob, "PCC",
                    title=f"sensitivity to {knob}")
    (out_dir / "results.md").write_text("\n".join(md) + "\n")
    summary = {"model": model, "n_fovs": int(table["fov"].nunique()),
               "mean_pcc": {f"{k}={lv:g}": float(g["pcc"].mean())
                            for (k, lv), g in table.groupby(["knob", "level"], sort=False)},
               "seconds": timer.seconds}
    write_json(summary, out_dir / "results.json")
    return summary
