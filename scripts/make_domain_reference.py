#!/usr/bin/env python
"""Write the domain reference of a shipped model: what its training fields look like.

Simulates fields planned as the model's training set is (``ri2fl.simulate.sets.plan_fields``,
64 x 256 x 256 on the canonical grid, the fast tomograph the model was trained with: see
:func:`training_ri`) and a few ordinary fields of every family (evaluations count all eight
in-domain; seeds 0 and 1, never the held-out seeds from 100000), measures
``ri2fl.preprocess.domain.domain_statistics`` on each, and writes the range of each statistic
over the fields, widened by a margin, to ``src/ri2fl/models/weights/<model>.domain.json``
(:func:`ri2fl.preprocess.domain.load_reference` reads it; ``predict`` and ``segment`` warn on
inputs outside it).

Example (the shipped ``default`` and ``segment-default`` references; about 5 minutes)::

    python scripts/make_domain_reference.py --models default segment-default \\
        --per-field runs/domain_reference_fields.json

With ``--only STAT ...`` the same fields are measured, but only those statistics' ranges are
written into the existing references (the others, and what made them, are kept; ``made_by``
gains this command): a statistic added later joins a shipped reference without changing it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from inspect import signature
from pathlib import Path

import numpy as np

from ri2fl.constants import CANONICAL_VOXEL_SIZE_UM, RI_CLIP
from ri2fl.models import WEIGHTS_DIR
from ri2fl.preprocess.domain import STATISTICS, domain_statistics
from ri2fl.simulate import optics, simulate_fov
from ri2fl.simulate.phantoms import CELL_TYPES
from ri2fl.simulate.sets import FieldSpec, plan_fields

#: Margin added on each side of a statistic's range over the training fields: this fraction
#: of the range, and at least the absolute floor (RI units).
MARGIN_FRACTION = 0.25
MARGIN_FLOOR = {"background_offset": 1e-3, "background_noise": 3e-4,
                "background_low_tail": 1e-3, "cell_dn_p50": 2e-3, "cell_dn_p99": 4e-3,
                "cell_texture": 5e-4, "background_z_correlation": 0.1,
                "cell_axial_detail": 0.03}
#: Values a statistic cannot pass (a noise is >= 0, a low tail <= 0, ...): ranges stop there.
LIMITS = {"background_noise": (0.0, math.inf), "background_low_tail": (-math.inf, 0.0),
          "background_z_correlation": (-1.0, 1.0), "cell_axial_detail": (0.0, math.inf)}
#: Statistics checked from below only: a smoother background than the simulator's comes from
#: crowded fields too (0.83 in a 32 x 128 x 128 astrocyte field); white noise (0) is what
#: tells a volume that no tomograph made.
LOW_ONLY = frozenset({"background_z_correlation"})


def training_ri(spec) -> tuple[np.ndarray, float]:
    """A planned field's RI as the shipped models were trained on it, and its medium index.

    The fast tomograph on the field's own periodic grid (``reconstruct_fast(wrap=True)``
    where the simulator has the option: the fast path before issue #30), with the measurement
    noise ``simulate_fov`` draws (its generator ``[seed, 0, 1]``), clipped to ``RI_CLIP``.
    """
    fov = simulate_fov(spec.cell_type, seed=spec.seed, shape=spec.shape, physics="none",
                       variant=spec.variant, n_cells=spec.n_cells, cluster=spec.cluster,
                       droplets_per_cell=spec.droplets_per_cell, fl_noise=False)
    medium = np.float32(fov.medium_index)
    wrap = {"wrap": True} if "wrap" in signature(optics.reconstruct_fast).parameters else {}
    rec = optics.reconstruct_fast(fov.ri_true - medium, fov.voxel_size_um, fov.medium_index,
                                  rng=np.random.default_rng([spec.seed, 0, 1]), **wrap)
    return np.clip(medium + rec, *RI_CLIP).astype(np.float32), fov.medium_index


def family_ri(spec) -> tuple[np.ndarray, float]:
    """A field of any family as ``simulate_fov`` makes it now (what evaluations call
    in-domain), and its medium index."""
    fov = simulate_fov(spec.cell_type, seed=spec.seed, shape=spec.shape, fl_noise=False)
    return fov.ri, fov.medium_index


def field_statistics(fields, make=training_ri) -> list[dict]:
    """Simulate each planned field (``make``) and measure its domain statistics."""
    rows = []
    for spec in fields:
        ri, medium = make(spec)
        stats = domain_statistics(ri, CANONICAL_VOXEL_SIZE_UM, medium)
        name = f"{spec.name[:-3]}_{'x'.join(map(str, spec.shape))}"
        rows.append({"name": name, "medium_index": medium, **stats})
        print(name, {k: f"{v:.3g}" for k, v in stats.items()}, flush=True)
    return rows


def manifest_statistics(manifest: Path, split: str) -> list[dict]:
    """Domain statistics of a training set's own files (one split of a manifest): for models
    trained on stored fields, such as the ``sim_broad`` set of randomly drawn instruments."""
    from ri2fl.data import list_samples
    from ri2fl.io import read_paired

    rows = []
    for path, _ in list_samples(manifest, split):
        sample = read_paired(path)
        stats = domain_statistics(sample.ri, sample.voxel_size_um, sample.medium_index)
        rows.append({"name": path.stem, "medium_index": sample.medium_index, **stats})
        print(path.stem, {k: f"{v:.3g}" for k, v in stats.items()}, flush=True)
    return rows


#: In the names of the per-family fields (``<family>_family_<seed>_<shape>``).
FAMILY = "_family_"


def family_fields(seeds: list[int], shapes: list[tuple[int, int, int]]) -> list:
    """Ordinary fields of every family, ``seeds`` (below the held-out 100000) x ``shapes``."""
    return [FieldSpec(cell_type, "family", seed, shape) for cell_type in CELL_TYPES
            for shape in shapes for seed in seeds]


def ranges(rows: list[dict], names=tuple(STATISTICS)) -> tuple[dict, dict]:
    """(observed [min, max], accepted [low, high]) of the checked statistics ``names``."""
    observed, accepted = {}, {}
    for name in names:
        values = [r[name] for r in rows if math.isfinite(r[name])]
        lo, hi = float(np.min(values)), float(np.max(values))
        margin = max(MARGIN_FRACTION * (hi - lo), MARGIN_FLOOR[name])
        low, high = LIMITS.get(name, (-math.inf, math.inf))
        observed[name] = [round(lo, 6), round(hi, 6)]
        top = high if name in LOW_ONLY else min(hi + margin, high)
        accepted[name] = [round(max(lo - margin, low), 5), round(top, 5)]
    return observed, accepted


def merge(path: Path, command: str, observed: dict, accepted: dict, training: list) -> None:
    """Write the ranges of some statistics into the existing reference ``path``, keeping the
    others; its ``made_by`` gains ``command`` (after "; "). ``training`` (the names of the
    training fields measured) must be the reference's own."""
    reference = json.loads(path.read_text(encoding="utf-8"))
    if reference["fields"]["training"]["names"] != training:
        raise SystemExit(f"{path} was made from other training fields: rerun without --only")
    if not reference["made_by"].endswith(command):
        reference["made_by"] = f"{reference['made_by']}; {command}"
    for name in observed:
        reference["margin"]["floor"][name] = MARGIN_FLOOR[name]
        reference["observed"][name] = observed[name]
        reference["ranges"][name] = accepted[name]
    path.write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["default"],
                   help="write <model>.domain.json for each (same training fields)")
    p.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--train", type=int, default=12)
    p.add_argument("--mitotic-train", type=int, default=4)
    p.add_argument("--sparse-train", type=int, default=4)
    p.add_argument("--lipid-train", type=int, default=4)
    p.add_argument("--shape", type=int, nargs=3, default=[64, 256, 256])
    p.add_argument("--family-seeds", type=int, nargs="*", default=[0, 1],
                   help="also fields of all eight families with these seeds, 32 x 128 x 128 "
                        "and 64 x 256 x 256, as simulate_fov makes them (evaluations count "
                        "every family in-domain)")
    p.add_argument("--per-field", type=Path, help="also write every field's statistics here")
    p.add_argument("--manifest", type=Path,
                   help="also measure the training files of this manifest (split --split), "
                        "beside the fibroblast training plan: for a model fine-tuned from "
                        "`default` on stored fields (both are its training data)")
    p.add_argument("--split", default="train", help="with --manifest: the split (train)")
    p.add_argument("--rows", type=Path, nargs="+",
                   help="take the statistics from earlier --per-field files instead of "
                        "simulating (same fields and options; a field in several, once)")
    p.add_argument("--only", nargs="+", choices=list(STATISTICS), metavar="STAT",
                   help="write only these statistics' ranges into the existing "
                        "<model>.domain.json (same fields and options as made it), keeping "
                        "the rest")
    args = p.parse_args(argv)
    fields = plan_fields(["fibroblast"], train=args.train, mitotic_train=args.mitotic_train,
                         sparse_train=args.sparse_train, lipid_train=args.lipid_train,
                         shape=args.shape)
    t0 = time.time()
    families = family_fields(args.family_seeds, [(32, 128, 128), (64, 256, 256)])
    if args.rows:
        merged = {r["name"]: r for path in args.rows for r in json.loads(path.read_text())}
        rows = sorted(merged.values(), key=lambda r: FAMILY in r["name"])  # families last
    else:
        rows = (field_statistics(fields)
                + (manifest_statistics(args.manifest, args.split) if args.manifest else [])
                + field_statistics(families, family_ri))
    observed, accepted = ranges(rows, args.only or tuple(STATISTICS))
    if args.per_field:
        args.per_field.parent.mkdir(parents=True, exist_ok=True)
        args.per_field.write_text(json.dumps(rows, indent=1))
    command = ("python scripts/make_domain_reference.py --models " + " ".join(args.models)
               + (f" --manifest {args.manifest.parent.name}/{args.manifest.name}"
                  if args.manifest else ""))
    training = [f.name for f in fields] + (
        [r["name"] for r in rows[len(fields):] if FAMILY not in r["name"]]
        if args.manifest else [])
    for model in args.models:
        out = args.out_dir / f"{model}.domain.json"
        if args.only:
            merge(out, f"{command} --only {' '.join(args.only)}", observed, accepted,
                  training)
            print(f"{len(rows)} fields in {time.time() - t0:.0f} s -> {out} "
                  f"({', '.join(args.only)})")
            continue
        reference = {
            "model": model,
            "made_by": command,
            "fields": {"training": {
                "names": training, "shape": list(args.shape),
                "physics": "fast, periodic grid (wrap)",
                **({"manifest": args.manifest.name, "split": args.split}
                   if args.manifest else {})},
                       "families": {"cell_types": list(CELL_TYPES),
                                    "seeds": args.family_seeds,
                                    "shapes": [[32, 128, 128], [64, 256, 256]],
                                    "physics": "simulate_fov default"}},
            "voxel_size_um": list(CANONICAL_VOXEL_SIZE_UM),
            "voxel_tolerance": 1.25,
            "margin": {"fraction": MARGIN_FRACTION, "floor": MARGIN_FLOOR},
            "observed": observed,
            "ranges": accepted,
        }
        out.write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")
        print(f"{len(rows)} fields in {time.time() - t0:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
