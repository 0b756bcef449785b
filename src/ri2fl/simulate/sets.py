"""Training sets of simulated fields: which fields (cell type, split, seed, options), and a
manifest over them. The shipped models' recipes (``configs/recipes``) and
``scripts/make_sim_data.py`` both plan their fields here, so the same options give the same
files.

>>> fields = plan_fields(train=2, val=1, shape=(16, 64, 64))
>>> [f.name for f in fields]
['fibroblast_train_00000.h5', 'fibroblast_train_00001.h5', 'fibroblast_val_10000.h5']
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FieldSpec", "plan_fields", "simulate_fields", "write_manifest"]

#: First seed of each kind of field (added to the set's ``seed``), as make_sim_data.py has it.
SEED_OFFSETS = {"train": 0, "val": 10_000, "test": 20_000, "mitotic_train": 30_000,
                "mitotic_val": 40_000, "sparse_train": 50_000, "sparse_val": 60_000,
                "lipid_train": 70_000, "lipid_val": 80_000}


@dataclass(frozen=True)
class FieldSpec:
    """One simulated field of view: the arguments of :func:`ri2fl.simulate.simulate_fov`."""

    cell_type: str
    split: str
    seed: int
    shape: tuple[int, int, int] = (64, 256, 256)
    variant: str | None = None
    n_cells: int | None = None
    cluster: bool | None = None
    droplets_per_cell: tuple[int, int] | None = None
    modalities: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.cell_type}_{self.split}_{self.seed:05d}.h5"


def plan_fields(cell_types: Sequence[str] = ("fibroblast",), train: int = 0, val: int = 0,
                test: int = 0, mitotic_train: int = 0, mitotic_val: int = 0,
                sparse_train: int = 0, sparse_val: int = 0, lipid_train: int = 0,
                lipid_val: int = 0, lipid_droplets: Sequence[int] = (20, 60),
                shape: Sequence[int] = (64, 256, 256), seed: int = 0,
                modalities: Sequence[str] = ()) -> list[FieldSpec]:
    """The fields of ``scripts/make_sim_data.py`` (same options, seeds, order and names).

    Per cell type: ordinary fields (train, val, test), fields whose central cell is mitotic,
    fields holding a single cell (every second one mitotic) and lipid-loaded fields whose
    cells hold ``lipid_droplets`` droplets each; each kind from its own seed offset
    (:data:`SEED_OFFSETS`).
    """
    from .fov import check_droplets_per_cell

    lipid = check_droplets_per_cell(lipid_droplets, "lipid_droplets")
    counts = {"train": train, "val": val, "test": test, "mitotic_train": mitotic_train,
              "mitotic_val": mitotic_val, "sparse_train": sparse_train,
              "sparse_val": sparse_val, "lipid_train": lipid_train, "lipid_val": lipid_val}
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
                    lipid if prefix == "lipid" else None, tuple(modalities)))
    return fields


def _write_field(path: Path, field: FieldSpec) -> None:
    from ..io import write_paired
    from .fov import simulate_fov

    fov = simulate_fov(field.cell_type, seed=field.seed, shape=field.shape,
                       variant=field.variant, n_cells=field.n_cells, cluster=field.cluster,
                       modalities=field.modalities, droplets_per_cell=field.droplets_per_cell)
    # only fields asked for again (overwrite) exist: ri2fl's own are replaced, never others
    write_paired(path, fov.to_paired(), overwrite=True)


def simulate_fields(out: str | Path, fields: Sequence[FieldSpec], workers: int = 1,
                    overwrite: bool = False) -> list[Path]:
    """Simulate the fields into ``out`` (files there are kept unless ``overwrite``).

    Returns
    -------
    list of Path
        Every field's file, in the order of ``fields``.
    """
    from ..progress import progress

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [f for f in fields if overwrite or not (out / f.name).exists()]
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_field, out / f.name, f) for f in todo]
            for future in progress(futures, desc="simulating", disable=False):
                future.result()
    else:
        for field in progress(todo, desc="simulating", disable=False):
            _write_field(out / field.name, field)
    return [out / f.name for f in fields]


def _is_mitotic(path: Path) -> bool:
    """Whether the simulated field holds a mitotic cell (forced or drawn at random)."""
    import h5py

    with h5py.File(path, "r") as f:
        return "mitotic" in str(f.attrs.get("variants", ""))


def write_manifest(out: str | Path, fields: Sequence[FieldSpec], name: str = "manifest.csv",
                   mitotic_weight: float | None = None) -> Path:
    """Write ``out/name`` listing ``fields`` (path, cell_type, seed, split[, weight]).

    With ``mitotic_weight``, a ``weight`` column draws the fields that hold a mitotic cell
    that many times as often (the others 1); the files must exist.
    """
    from .._atomic import atomic_path

    out = Path(out)
    rows = []
    for f in fields:
        rows.append({"path": f.name, "cell_type": f.cell_type, "seed": f.seed,
                     "split": f.split})
        if mitotic_weight is not None:
            rows[-1]["weight"] = mitotic_weight if _is_mitotic(out / f.name) else 1.0
    manifest = out / name
    with atomic_path(manifest, overwrite=True) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["path"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest
