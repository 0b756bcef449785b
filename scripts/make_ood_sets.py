#!/usr/bin/env python
"""Build the out-of-domain evaluation sets of issue #30 from their fixed definition.

Writes, for each simulated part of the config (``configs/ood_eval.yaml``), its paired files
and a ``manifest.csv`` (split ``test``) under ``OUT/<part>/``:

- ``OUT/physical/``: the config's fields (``ri2fl.simulate.sets.FieldSpec``) rendered
  without a tomograph, then measured by the physical tomograph
  (:func:`ri2fl.simulate.physical.reconstruct_physical`) with the optics each field names;
  written by ``ri2fl.simulate.sets.write_fov`` and
  ``write_manifest``; the optics are file attributes (``optics``, ``wavelength_um``, ...).
- ``OUT/textbook/``: :func:`ri2fl.simulate.textbook.write_textbook_set`.

With ``--fast-control``, also ``OUT/physical_fast/``: the same fields (same cells, seeds and
files) through the fast tomograph with the training instrument, a control that is no part of
the set: it separates what the tomograph costs from what the cells cost. The HL60 part is the
bundled cell; nothing is written for it. Files ri2fl wrote earlier are
replaced; nothing else is.

Example (about 1 minute on 2 CPU cores)::

    python scripts/make_ood_sets.py configs/ood_eval.yaml ood/
    python scripts/eval_ood.py configs/ood_eval.yaml ood/ ood_eval/
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ri2fl.constants import RI_CLIP
from ri2fl.evaluate.ood import field_seeds, optics_outside_training, read_ood_config
from ri2fl.simulate.physical import reconstruct_physical
from ri2fl.simulate.sets import FieldSpec, simulate_fields, write_fov, write_manifest
from ri2fl.simulate.textbook import write_textbook_set


def physical_fields(part: Mapping[str, Any]) -> list[tuple[FieldSpec, dict[str, Any]]]:
    """The fields of the ``physical`` part and the optics of each.

    Parameters
    ----------
    part : mapping
        ``parts.physical`` of the config: ``seed``, ``shape``, ``fields`` (``cell_type``,
        ``n_cells``, ``optics`` by name) and ``optics``.

    Returns
    -------
    list of (FieldSpec, dict)
        Each field rendered without a tomograph (``physics="none"``), and its optics.
    """
    optics = {o["name"]: dict(o) for o in part["optics"]}
    return [(FieldSpec(f["cell_type"], "test", seed, tuple(part["shape"]),
                       n_cells=f.get("n_cells"), physics="none"), optics[f["optics"]])
            for f, seed in zip(part["fields"], field_seeds(part))]


def measure_physical(spec: FieldSpec, optics: Mapping[str, Any],
                     noise_std: float = 6e-4) -> Any:
    """Simulate the field of ``spec`` and replace its RI by the physical tomograph's.

    Parameters
    ----------
    spec : FieldSpec
        The field, rendered without a tomograph.
    optics : mapping
        ``name``, ``wavelength_um``, ``na``, ``na_ill``, ``n_illuminations``.
    noise_std : float
        Reconstructed-RI noise (``reconstruct_physical``'s).

    Returns
    -------
    SimulatedFOV
        The field with ``ri`` = the physical reconstruction (clipped to ``RI_CLIP`` as the
        simulator's tomographs are) and the optics in its metadata.
    """
    fov = spec.simulate()
    dn = fov.ri_true - np.float32(fov.medium_index)
    rec = reconstruct_physical(
        dn, fov.voxel_size_um, fov.medium_index, noise_std=noise_std,
        rng=np.random.default_rng([spec.seed, 9]),
        n_illuminations=int(optics["n_illuminations"]), na=float(optics["na"]),
        na_ill=float(optics["na_ill"]), wavelength=float(optics["wavelength_um"]))
    fov.ri = np.clip(np.float32(fov.medium_index) + rec, *RI_CLIP).astype(np.float32)
    fov.physics = "physical"
    fov.metadata.update({"optics": str(optics.get("name", "")),
                         "wavelength_um": float(optics["wavelength_um"]),
                         "na": float(optics["na"]), "na_ill": float(optics["na_ill"]),
                         "n_illuminations": int(optics["n_illuminations"]),
                         "ood_set": "physical"})
    return fov


def _write_physical(path: Path, spec: FieldSpec, optics: dict[str, Any],
                    noise_std: float) -> None:
    write_fov(path, measure_physical(spec, optics, noise_std), spec.split)


def make_physical(part: Mapping[str, Any], out: Path, workers: int = 1) -> Path:
    """Write the ``physical`` part into ``out`` (paired files and ``manifest.csv``)."""
    fields = physical_fields(part)
    noise = float(part.get("noise_std", 6e-4))
    out.mkdir(parents=True, exist_ok=True)
    if workers > 1 and len(fields) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_physical, out / s.file, s, o, noise)
                       for s, o in fields]
            for future in futures:
                future.result()
    else:
        for spec, optics in fields:
            _write_physical(out / spec.file, spec, optics, noise)
    return write_manifest(out, [s for s, _ in fields])


def make_fast_control(part: Mapping[str, Any], out: Path, workers: int = 1) -> Path:
    """Write the ``physical`` part's fields through the fast path into ``out`` (a control)."""
    fields = [replace(spec, physics="fast") for spec, _ in physical_fields(part)]
    simulate_fields(out, fields, workers=workers, overwrite=True)
    return write_manifest(out, fields)


def make_textbook(part: Mapping[str, Any], out: Path) -> Path:
    """Write the ``textbook`` part into ``out`` (paired files and ``manifest.csv``)."""
    return write_textbook_set(out, n=int(part["n_fields"]), seed=int(part["seed"]),
                              shape=tuple(part["shape"]), overwrite=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", type=Path, help="configs/ood_eval.yaml")
    p.add_argument("out", type=Path, help="output folder (gets physical/ and textbook/)")
    p.add_argument("--parts", nargs="+", default=["physical", "textbook"],
                   choices=["physical", "textbook"], help="only these parts")
    p.add_argument("--n-fields", type=int, default=None,
                   help="only the first N fields of each part (a smoke test, not the set)")
    p.add_argument("--workers", type=int, default=1, help="processes for the physical part")
    p.add_argument("--fast-control", action="store_true",
                   help="also OUT/physical_fast/: the physical part's fields through the fast "
                        "path (a control, not part of the set)")
    args = p.parse_args(argv)
    config = read_ood_config(args.config)
    for name in args.parts:
        part = dict(config["parts"][name])
        if args.n_fields is not None and "fields" in part:
            part["fields"] = part["fields"][:args.n_fields]
        elif args.n_fields is not None:
            part["n_fields"] = min(int(part["n_fields"]), args.n_fields)
        if name == "physical":
            for optics in part["optics"]:
                print(f"optics {optics['name']}: outside the training ranges: "
                      f"{'; '.join(optics_outside_training(optics))}")
            manifest = make_physical(part, args.out / name, args.workers)
            if args.fast_control:
                control = make_fast_control(part, args.out / "physical_fast", args.workers)
                print(f"control (fast path, not part of the set): {control}")
        else:
            manifest = make_textbook(part, args.out / name)
        print(f"{name}: {len(field_seeds(part))} fields, seeds {field_seeds(part)[0]}-"
              f"{field_seeds(part)[-1]}: {manifest}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
