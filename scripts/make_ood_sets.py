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
the set: it separates what the tomograph costs from what the cells cost. With
``--in-domain``, also ``OUT/in_domain/``: the in-domain reference of the uncertainty study
(``eval_ood.py --uncertainty``), the physical part's cell types, numbers of cells and shape
through the default fast tomograph, from seeds of its own (910000 + i,
:data:`ri2fl.evaluate.ood.IN_DOMAIN_SEED`: apart from training, the experiments and the
fixed sets, which it does not change). The HL60 part is the bundled cell; nothing is written
for it. Files ri2fl wrote earlier are replaced; nothing else is.

Example (about 1 minute on 2 CPU cores)::

    python scripts/make_ood_sets.py configs/ood_eval.yaml ood/ --in-domain
    python scripts/eval_ood.py configs/ood_eval.yaml ood/ ood_eval/
    python scripts/eval_ood.py configs/ood_eval.yaml ood/ ood_eval/ --uncertainty --tta 2 --mc 4
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ri2fl.errors import ConfigError
from ri2fl.evaluate.ood import (
    IN_DOMAIN,
    field_seeds,
    in_domain_seeds,
    measure_physical,  # noqa: F401  (was defined here; kept importable from the script)
    optics_outside_training,
    read_ood_config,
    seed_conflicts,
    write_physical_set,
)
from ri2fl.simulate.sets import FieldSpec, simulate_fields, write_manifest
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


def make_physical(part: Mapping[str, Any], out: Path, workers: int = 1) -> Path:
    """Write the ``physical`` part into ``out`` (paired files and ``manifest.csv``)."""
    return write_physical_set(out, physical_fields(part), float(part.get("noise_std", 6e-4)),
                              workers)


def make_fast_control(part: Mapping[str, Any], out: Path, workers: int = 1) -> Path:
    """Write the ``physical`` part's fields through the fast path into ``out`` (a control)."""
    fields = [replace(spec, physics="fast") for spec, _ in physical_fields(part)]
    simulate_fields(out, fields, workers=workers, overwrite=True)
    return write_manifest(out, fields)


def in_domain_fields(part: Mapping[str, Any]) -> list[FieldSpec]:
    """The in-domain reference of the uncertainty study: the ``physical`` part's fields (cell
    types, numbers of cells, shape) through the default fast tomograph, from the seeds of
    :func:`ri2fl.evaluate.ood.in_domain_seeds` (910000 + i)."""
    return [replace(spec, seed=seed, physics="fast")
            for (spec, _), seed in zip(physical_fields(part), in_domain_seeds(part))]


def make_in_domain(config: Mapping[str, Any], part: Mapping[str, Any], out: Path,
                   workers: int = 1) -> Path:
    """Write the in-domain reference into ``out`` (paired files and ``manifest.csv``).

    Its seeds are checked against training, the experiments and the fixed sets of
    ``config``; ``part`` is the (possibly shortened) ``physical`` part.
    """
    fields = in_domain_fields(part)
    clashes = seed_conflicts([f.seed for f in fields], config, in_domain=False)
    if clashes:
        raise ConfigError(f"the in-domain reference uses {', '.join(clashes)}", "seed")
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
    p.add_argument("--in-domain", action="store_true",
                   help=f"also OUT/{IN_DOMAIN}/: the in-domain reference of eval_ood.py "
                        "--uncertainty (the physical part's fields through the default fast "
                        "path, seeds 910000 + i)")
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
    if args.in_domain:
        part = dict(config["parts"]["physical"])
        part["fields"] = part["fields"][:args.n_fields]
        manifest = make_in_domain(config, part, args.out / IN_DOMAIN, args.workers)
        seeds = in_domain_seeds(part)
        print(f"{IN_DOMAIN} (reference, fast path): {len(seeds)} fields, seeds {seeds[0]}-"
              f"{seeds[-1]}: {manifest}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
