#!/usr/bin/env python
"""Does the off-domain check fire where it should, and does the uncertainty rise there?

Builds out-of-domain inputs (the real HL60 tomogram; "textbook" cells, a plain one and those
of ``ri2fl.simulate.textbook`` where present; a simulated field
resampled to a 40x instrument's voxels; a field in medium 1.333 with a 5 % RI scale error,
unclipped as real tomographs are, given as 1.337 and as 1.333; optionally a field through the
physical tomograph model) and held-out in-domain fields of all eight simulated families
(seeds from 100000, never the reference's), and reports for each the reasons
:func:`ri2fl.preprocess.domain.check_domain` gives against the shipped ``default``
reference. With ``--predict``, also the mean predicted uncertainty of
``predict_volume(tta=2, mc=2)`` (all voxels, and voxels 0.005 above the medium) and, where
the true fluorescence is known, the Spearman correlation of the voxel-wise uncertainty with
the absolute error.

Example (about 4 minutes on 2 CPU cores)::

    python scripts/eval_domain.py --predict --out runs/eval_domain.json

With ``--stored FOLDER ...``, the cases are instead the real HL60 cell and the paired fields
of those folders (split ``test`` of their ``manifest.csv``: the sets of
``scripts/make_ood_sets.py``, a held-out simulated test set), checked against ``--model``'s
reference; each row also holds the statistics measured::

    python scripts/eval_domain.py --stored ood/physical ood/in_domain sim_test \\
        --model segment-default
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

import numpy as np
from scipy import ndimage

from ri2fl.constants import CANONICAL_VOXEL_SIZE_UM as CANONICAL
from ri2fl.models import WEIGHTS_DIR
from ri2fl.preprocess.domain import domain_reasons, domain_statistics, load_reference
from ri2fl.simulate import simulate_fov
from ri2fl.simulate.phantoms import CELL_TYPES

SHAPE = (32, 128, 128)
#: (name, volume, voxel size, medium index given, true FL or None)
Case = tuple[str, np.ndarray, tuple, float, dict | None]


def textbook_cell(shape=SHAPE, voxel=CANONICAL, medium: float = 1.337,
                  seed: int = 0) -> np.ndarray:
    """A dome of RI 1.36 on the dish with a darker ellipsoidal nucleus (1.352), blurred by a
    Gaussian of 0.4 µm axially and 0.12 µm laterally, with noise of 5e-4; no tomograph."""
    z, y, x = np.meshgrid(*(np.arange(n) * v for n, v in zip(shape, voxel)), indexing="ij")
    cy, cx, base = shape[1] * voxel[1] / 2, shape[2] * voxel[2] / 2, 0.6
    dome = (((y - cy) / 8.0) ** 2 + ((x - cx) / 7.0) ** 2 + ((z - base) / 4.5) ** 2 <= 1)
    dome &= z >= base
    nucleus = ((y - cy) / 3.5) ** 2 + ((x - cx) / 3.0) ** 2 + ((z - base - 2) / 1.6) ** 2 <= 1
    ri = np.full(shape, medium, np.float32)
    ri[dome] = 1.36
    ri[dome & nucleus] = 1.352
    ri = ndimage.gaussian_filter(ri, [0.4 / voxel[0], 0.12 / voxel[1], 0.12 / voxel[2]])
    noise = np.random.default_rng(seed).normal(0, 5e-4, shape).astype(np.float32)
    return (ri + noise).astype(np.float32)


def forty_x(seed: int = 100000) -> Case:
    """A simulated fibroblast field resampled to 0.875 x 0.163 x 0.163 µm voxels."""
    from ri2fl.preprocess import resample

    fov = simulate_fov("fibroblast", seed=seed, shape=SHAPE)
    voxel = (0.875, 0.163, 0.163)
    ri = resample(fov.ri, CANONICAL, voxel, anti_alias=True)
    fl = {k: resample(v, CANONICAL, voxel, anti_alias=True) for k, v in fov.fl.items()}
    return "40x voxels 0.875 x 0.163 x 0.163", ri, voxel, fov.medium_index, fl


def medium_scale(stated: float, seed: int = 100000) -> Case:
    """A fibroblast field in medium 1.333 with a 5 % RI scale error, not clipped."""
    from ri2fl.simulate import optics

    fov = simulate_fov("fibroblast", seed=seed, shape=SHAPE, medium_index=1.333)
    rng = np.random.default_rng([seed, 7])
    rec = optics.reconstruct_fast(fov.ri_true - np.float32(1.333), CANONICAL, 1.333, 6e-4, rng)
    ri = (np.float32(1.333) + np.float32(1.05) * rec).astype(np.float32)
    return f"medium 1.333, RI x1.05, given {stated}", ri, CANONICAL, stated, fov.fl


def physical(seed: int = 100000) -> Case:
    """A fibroblast field through the physical tomograph model (beam propagation, Rytov)."""
    fov = simulate_fov("fibroblast", seed=seed, shape=SHAPE, physics="physical")
    return "physical tomograph model", fov.ri, CANONICAL, fov.medium_index, fov.fl


def hl60() -> Case:
    from ri2fl.io import read

    vol = read(Path(__file__).resolve().parents[1] / "src/ri2fl/data/hl60_ri.h5")
    return ("HL60 (real)", np.asarray(vol.data, np.float32), tuple(vol.voxel_size_um),
            vol.medium_index, None)


def textbook_set(seeds=(0, 1, 2)) -> Iterator[Case]:
    """The textbook cells of :mod:`ri2fl.simulate.textbook` (with true fluorescence; with
    a nucleolus and lipid droplets)."""
    from ri2fl.simulate.textbook import textbook_cell as drawn

    for seed in seeds:
        cell = drawn(seed=seed)
        yield (f"textbook cell {seed} (simulate.textbook)", cell.ri, CANONICAL,
               cell.medium_index, cell.fl)


def out_of_domain(with_physical: bool) -> Iterator[Case]:
    yield hl60()
    yield "textbook cell (plain dome + nucleus)", textbook_cell(), CANONICAL, 1.337, None
    yield from textbook_set()
    yield forty_x()
    yield medium_scale(1.337)
    yield medium_scale(1.333)
    if with_physical:
        yield physical()


def stored(folders: list[Path]) -> Iterator[Case]:
    """The paired fields of each folder (split ``test`` of its ``manifest.csv``)."""
    from ri2fl.data import list_samples
    from ri2fl.io import read_paired

    for folder in folders:
        for path, _ in list_samples(folder, "test"):
            sample = read_paired(path, load_extra=False)
            yield (f"{folder.name}/{path.stem}", np.asarray(sample.ri, np.float32),
                   tuple(sample.voxel_size_um), sample.medium_index, sample.fl)


def in_domain(seeds: list[int], shape=SHAPE) -> Iterator[Case]:
    for cell_type in CELL_TYPES:
        for seed in seeds:
            fov = simulate_fov(cell_type, seed=seed, shape=shape)
            yield (f"{cell_type} {seed} {'x'.join(map(str, shape))}", fov.ri, CANONICAL,
                   fov.medium_index, fov.fl)


def uncertainty(ri: np.ndarray, voxel, medium: float, truth: dict | None) -> dict:
    """Mean uncertainty (all voxels, cell voxels) and uncertainty-error Spearman."""
    from scipy.stats import spearmanr

    from ri2fl.infer import predict_volume

    pred = predict_volume(ri, voxel, tta=2, mc=2, medium_index=medium, progress=False,
                          domain_check=False)
    cells = ri > medium + 0.005
    total = {t: np.hypot(pred.uncertainty_data[t], pred.uncertainty_model[t])
             for t in pred.targets}
    out = {"u_data": float(np.mean([np.mean(v) for v in pred.uncertainty_data.values()])),
           "u_model": float(np.mean([np.mean(v) for v in pred.uncertainty_model.values()])),
           "u_total_cells": float(np.mean([v[cells].mean() for v in total.values()]))
           if cells.any() else float("nan")}
    if truth is not None:
        pick = np.random.default_rng(0).choice(ri.size, min(ri.size, 200_000), replace=False)
        rho = [spearmanr(total[t].ravel()[pick],
                         np.abs(pred.fl[t] - truth[t]).ravel()[pick])[0]
               for t in pred.targets if t in truth]
        out["spearman"] = float(np.nanmean(rho))
    return out


def run(cases: Iterator[Case], reference: dict, predict: bool,
        log: Callable[[dict], None]) -> list[dict]:
    rows = []
    for name, ri, voxel, medium, truth in cases:
        t0 = time.time()
        stats = domain_statistics(ri, voxel, medium)
        row = {"name": name, "reasons": domain_reasons(stats, reference),
               "statistics": {k: float(f"{v:.4g}") for k, v in stats.items()}}
        if predict:
            row.update(uncertainty(ri, voxel, medium, truth))
        row["seconds"] = round(time.time() - t0, 1)
        log(row)
        rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--predict", action="store_true", help="also measure the uncertainty")
    p.add_argument("--physical", action="store_true",
                   help="add a field through the physical tomograph model (slow)")
    p.add_argument("--seeds", type=int, nargs="+", default=[100000],
                   help="held-out seeds per family (default 100000)")
    p.add_argument("--full-size", action="store_true",
                   help="also check one 64 x 256 x 256 field per family (no prediction)")
    p.add_argument("--stored", type=Path, nargs="+", metavar="FOLDER",
                   help="check HL60 and these folders' paired fields (split test) instead")
    p.add_argument("--model", default="default",
                   help="the shipped model whose reference checks (default: default)")
    p.add_argument("--out", type=Path, help="write the rows as JSON")
    args = p.parse_args(argv)
    reference = load_reference(WEIGHTS_DIR / f"{args.model}.domain.json")

    def log(row: dict) -> None:
        print(json.dumps(row), flush=True)

    if args.stored:
        rows = run(chain([hl60()], stored(args.stored)), reference, args.predict, log)
        print(f"{sum(bool(r['reasons']) for r in rows)} of {len(rows)} warn", flush=True)
    else:
        rows = run(out_of_domain(args.physical), reference, args.predict, log)
        rows += run(in_domain(args.seeds), reference, args.predict, log)
    if args.full_size and not args.stored:
        rows += run(in_domain(args.seeds[:1], (64, 256, 256)), reference, False, log)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
