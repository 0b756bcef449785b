"""Training sets of simulated fields: which fields (cell type, split, seed, options), and a
manifest over them. The shipped models' recipes (``configs/recipes``) and
``scripts/make_sim_data.py`` both plan their fields here, so the same options give the same
files.

This is ri2fl's one writer of simulated data sets: :func:`simulate_fields` (files a field
holds: :func:`write_fov`) and :func:`write_manifest` serve ``ri2fl simulate``
(:func:`ri2fl.simulate.simulate_dataset`, time-lapses too), the recipes,
``scripts/make_sim_data.py`` and the paper experiments alike.

>>> fields = plan_fields(train=2, val=1, shape=(16, 64, 64))
>>> [f.name for f in fields]
['fibroblast_train_00000.h5', 'fibroblast_train_00001.h5', 'fibroblast_val_10000.h5']
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_COLUMNS", "FieldSpec", "plan_fields", "simulate_fields", "write_fov",
           "write_manifest", "write_manifest_rows"]

#: Columns of a manifest (``weight`` and ``frame`` may follow).
MANIFEST_COLUMNS = ("path", "cell_type", "seed", "split")

#: First seed of each kind of field (added to the set's ``seed``), as make_sim_data.py has it.
SEED_OFFSETS = {"train": 0, "val": 10_000, "test": 20_000, "mitotic_train": 30_000,
                "mitotic_val": 40_000, "sparse_train": 50_000, "sparse_val": 60_000,
                "lipid_train": 70_000, "lipid_val": 80_000}


@dataclass(frozen=True)
class FieldSpec:
    """One simulated field of view: the arguments of :func:`ri2fl.simulate.simulate_fov`.

    ``physics`` and ``options`` (further keyword arguments) go to ``simulate_fov`` too;
    ``path`` is the file relative to the set's folder (default :attr:`name`).
    """

    cell_type: str
    split: str
    seed: int
    shape: tuple[int, int, int] = (64, 256, 256)
    variant: str | None = None
    n_cells: int | None = None
    cluster: bool | None = None
    droplets_per_cell: tuple[int, int] | None = None
    modalities: tuple[str, ...] = ()
    physics: str = "fast"
    options: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""

    @property
    def name(self) -> str:
        return f"{self.cell_type}_{self.split}_{self.seed:05d}.h5"

    @property
    def file(self) -> str:
        """The file, relative to the set's folder."""
        return self.path or self.name

    def simulate(self) -> Any:
        """The :class:`ri2fl.simulate.SimulatedFOV` of this field."""
        from .fov import simulate_fov

        kwargs = {"shape": self.shape, "physics": self.physics, "variant": self.variant,
                  "n_cells": self.n_cells, "cluster": self.cluster,
                  "modalities": self.modalities,
                  "droplets_per_cell": self.droplets_per_cell, **self.options}
        return simulate_fov(self.cell_type, seed=self.seed, **kwargs)


def plan_fields(cell_types: Sequence[str] = ("fibroblast",), train: int = 0, val: int = 0,
                test: int = 0, mitotic_train: int = 0, mitotic_val: int = 0,
                sparse_train: int = 0, sparse_val: int = 0, lipid_train: int = 0,
                lipid_val: int = 0, lipid_droplets: Sequence[int] = (20, 60),
                shape: Sequence[int] = (64, 256, 256), seed: int = 0,
                modalities: Sequence[str] = (), domain: str | None = None
                ) -> list[FieldSpec]:
    """The fields of ``scripts/make_sim_data.py`` (same options, seeds, order and names).

    Per cell type: ordinary fields (train, val, test), fields whose central cell is mitotic,
    fields holding a single cell (every second one mitotic) and lipid-loaded fields whose
    cells hold ``lipid_droplets`` droplets each; each kind from its own seed offset
    (:data:`SEED_OFFSETS`). ``domain="random"`` images each field with an instrument drawn
    from :mod:`ri2fl.simulate.domain` (recorded in the file). Procedural cells have no
    mitotic variant: their mitotic kinds are refused.
    """
    from ..errors import ConfigError
    from .fov import check_droplets_per_cell
    from .phantoms import PROCEDURAL

    if domain not in (None, "default", "random"):
        raise ConfigError(f"unknown imaging domain {domain!r}", "domain",
                          "use 'random' (an instrument drawn per field) or leave it out")
    options = {"domain": "random"} if domain == "random" else {}

    lipid = check_droplets_per_cell(lipid_droplets, "lipid_droplets")
    counts = {"train": train, "val": val, "test": test, "mitotic_train": mitotic_train,
              "mitotic_val": mitotic_val, "sparse_train": sparse_train,
              "sparse_val": sparse_val, "lipid_train": lipid_train, "lipid_val": lipid_val}
    if PROCEDURAL in cell_types and (mitotic_train or mitotic_val or sparse_train or sparse_val):
        raise ConfigError("procedural cells have no mitotic variant", "cell_types",
                          "plan the mitotic and single-cell fields for the families only")
    fields = []
    for ct in cell_types:
        for kind, n in counts.items():
            prefix, _, split = kind.rpartition("_")
            for i in range(n):
                variant = {"mitotic": "mitotic",
                           "sparse": ("normal", "mitotic")[i % 2]}.get(prefix)
                fields.append(FieldSpec(
                    ct, split, seed + SEED_OFFSETS[kind] + i, tuple(shape), variant,
                    1 if prefix == "sparse" else None, None,
                    lipid if prefix == "lipid" else None, tuple(modalities),
                    options=options))
    return fields


def write_fov(path: str | Path, fov: Any, split: str | None = None) -> Path:
    """Write a :class:`ri2fl.simulate.SimulatedFOV` as a paired file (``split`` as attribute).

    Only a file asked for again exists here (resume or overwrite): ri2fl's own are replaced,
    never others.
    """
    from ..io import write_paired

    sample = fov.to_paired()
    if split is not None:
        sample.attrs["split"] = split
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_paired(path, sample, overwrite=True)


def _write_field(path: Path, spec: FieldSpec) -> None:
    write_fov(path, spec.simulate(), spec.split)


def _single_threaded_fft() -> None:
    from . import optics

    optics.FFT_WORKERS = 1


def _complete(path: Path, spec: FieldSpec) -> bool:
    """Whether ``path`` is a readable paired file holding ``fl`` and the field's modalities."""
    import h5py

    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as f:
            return "fl" in f and all(m in f for m in spec.modalities)
    except OSError:
        return False


def simulate_fields(out: str | Path, fields: Sequence[FieldSpec], workers: int = 1,
                    overwrite: bool = False) -> list[Path]:
    """Simulate the fields into ``out`` (complete files there are kept unless ``overwrite``).

    A file lacking the field's modalities is simulated again. With ``workers > 1`` the fields
    are simulated in that many processes, each with one FFT thread.

    Returns
    -------
    list of Path
        Every field's file, in the order of ``fields``.
    """
    from ..progress import progress

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [f for f in fields if overwrite or not _complete(out / f.file, f)]
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=_single_threaded_fft) as pool:
            futures = [pool.submit(_write_field, out / f.file, f) for f in todo]
            for future in progress(futures, desc="simulating", disable=False):
                future.result()
    else:
        for spec in progress(todo, desc="simulating", disable=False):
            _write_field(out / spec.file, spec)
    return [out / f.file for f in fields]


def _field_attrs(path: Path) -> dict:
    """A simulated field's HDF5 attributes (what it holds and how it was imaged)."""
    import h5py

    with h5py.File(path, "r") as f:
        return dict(f.attrs)


def write_manifest(out: str | Path, fields: Sequence[FieldSpec], name: str = "manifest.csv",
                   mitotic_weight: float | None = None,
                   default_tomograph_weight: float | None = None) -> Path:
    """Write ``out/name`` listing ``fields`` (path, cell_type, seed, split[, weight]).

    With ``mitotic_weight``, a ``weight`` column draws the fields that hold a mitotic cell
    that many times as often (the others 1); with ``default_tomograph_weight``, the fields
    imaged by the default tomograph rather than a randomly drawn instrument. The two
    multiply; the files must exist.
    """
    out = Path(out)
    rows = []
    for f in fields:
        rows.append({"path": f.file, "cell_type": f.cell_type, "seed": f.seed,
                     "split": f.split})
        if mitotic_weight is None and default_tomograph_weight is None:
            continue
        attrs, weight = _field_attrs(out / f.file), 1.0
        if mitotic_weight is not None and "mitotic" in str(attrs.get("variants", "")):
            weight *= mitotic_weight
        # a field of the default fast tomograph carries no drawn instrument
        if default_tomograph_weight is not None and "imaging_domain" not in attrs:
            weight *= default_tomograph_weight
        rows[-1]["weight"] = weight
    return write_manifest_rows(out / name, rows)


def write_manifest_rows(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write manifest ``rows`` (dicts, columns those of the first row) to ``path`` atomically."""
    from .._atomic import atomic_path

    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else list(MANIFEST_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path
