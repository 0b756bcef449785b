"""Paired training sets: one ``.h5`` per field of view (``ri2fl.io.write_paired``) and a
``manifest.csv`` with columns ``path`` (relative to the folder), ``cell_type``, ``seed`` and
``split`` (train / val / test), written by :mod:`ri2fl.simulate.sets`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .fov import check_args, check_droplets_per_cell
from .phantoms import SIMULATED_KINDS
from .sets import MANIFEST_COLUMNS, FieldSpec, simulate_fields, write_manifest

__all__ = ["MANIFEST_COLUMNS", "assign_splits", "sample_seed", "simulate_dataset"]

SPLITS = ("train", "val", "test")


def sample_seed(seed: int, cell_type: str, index: int) -> int:
    """Seed of the ``index``-th field of ``cell_type`` in a data set made with ``seed``.

    Independent of which other cell types or how many fields are requested, so data sets
    grown later reproduce the fields of smaller ones.
    """
    return int(seed) * 1_000_000 + SIMULATED_KINDS.index(cell_type) * 100_000 + int(index)


def assign_splits(n: int, fractions: Sequence[float], rng: np.random.Generator) -> list[str]:
    """Split ``n`` items into train / val / test by ``fractions`` (largest-remainder rounding,
    at least one training item)."""
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or np.any(fr < 0) or fr.sum() <= 0:
        raise ConfigError(f"split fractions must be three non-negative numbers, got {fractions}",
                          "split_fractions", "e.g. (0.8, 0.1, 0.1)")
    fr = fr / fr.sum()
    counts = np.floor(fr * n).astype(int)
    for i in np.argsort(-(fr * n - counts))[: n - counts.sum()]:
        counts[i] += 1
    if n > 0 and counts[0] == 0:
        counts[int(np.argmax(counts))] -= 1
        counts[0] += 1
    labels = np.repeat(np.array(SPLITS), counts)
    return [str(s) for s in rng.permutation(labels)]


def _shift_option(seed: int, max_shift: float) -> dict[str, float]:
    if max_shift <= 0:
        return {}
    shift = np.random.default_rng([seed, 17]).uniform(-max_shift, max_shift)
    return {"fl_shift_z_um": float(np.round(shift, 3))}


def simulate_dataset(out_dir: str | Path, cell_types: Sequence[str] = ("fibroblast",),
                     n_per_type: int = 10, seed: int = 0,
                     shape: tuple[int, int, int] = (64, 256, 256), physics: str = "fast",
                     modalities: Sequence[str] = (),
                     split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
                     overwrite: bool = False, workers: int = 1, max_fl_shift_um: float = 0.0,
                     **fov_options) -> Path:
    """Simulate ``n_per_type`` fields of view of each cell type into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder; gets ``<cell_type>/<cell_type>_<index>.h5`` files and ``manifest.csv``.
    cell_types : sequence of str
        Families from :data:`ri2fl.simulate.CELL_TYPES`, or "procedural" (cells of random
        morphology).
    n_per_type : int
        Fields per family.
    seed : int
        Data-set seed; each field's seed is :func:`sample_seed` (recorded in the manifest).
    shape, physics, modalities
        Passed to :func:`ri2fl.simulate.simulate_fov`.
    split_fractions : sequence of float
        Train / val / test fractions, assigned per cell type.
    overwrite : bool
        Re-simulate fields whose file exists (default: keep them, so a run can resume).
    workers : int
        Processes simulating in parallel (each then uses one FFT thread).
    max_fl_shift_um : float
        Misalign fluorescence and RI along z by a shift drawn per field in
        [-max_fl_shift_um, max_fl_shift_um] (recorded as the file attribute
        ``fl_shift_z_um``), as real RI/FL pairs are.
    **fov_options
        Further keyword arguments for :func:`simulate_fov`.

    Returns
    -------
    Path
        The manifest (``out_dir / "manifest.csv"``).
    """
    out_dir = Path(out_dir)
    cell_types = list(cell_types)
    for ct in cell_types:
        check_args(ct, shape, physics, tuple(modalities))
    if fov_options.get("droplets_per_cell") is not None:  # before any worker starts
        check_droplets_per_cell(fov_options["droplets_per_cell"])
    if n_per_type < 1:
        raise ConfigError(f"n_per_type must be at least 1, got {n_per_type}", "n_per_type")
    fields = []
    for ct in cell_types:
        splits = assign_splits(n_per_type, split_fractions,
                               np.random.default_rng([seed, SIMULATED_KINDS.index(ct)]))
        for i in range(n_per_type):
            s = sample_seed(seed, ct, i)
            fields.append(FieldSpec(ct, splits[i], s, tuple(shape), physics=physics,
                                    modalities=tuple(modalities), path=f"{ct}/{ct}_{i:04d}.h5",
                                    options={**_shift_option(s, max_fl_shift_um),
                                             **fov_options}))
    simulate_fields(out_dir, fields, workers=workers, overwrite=overwrite)
    return write_manifest(out_dir, fields)
