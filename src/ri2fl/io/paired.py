"""Paired training samples in the paper's HDF5 convention, extended for multi-target data.

Layout of one ``.h5`` file (all arrays (Z, Y, X) on the RI grid):

- ``ri``: float32 reconstructed RI, attrs ``voxel_size_um`` (z, y, x), ``medium_index``.
- ``fl``: float32 fluorescence, either (Z, Y, X) for one target (attr ``target``) or
  (C, Z, Y, X) with attr ``channel_names``; the paper's files hold a single ``fl``.
- optional ``ri_true`` (float32), ``masks/<name>`` (uint8 0/1), ``cell_labels`` and
  ``nucleus_labels`` (int32), ``bf`` and ``dic`` (float32).
- root attrs: ``cell_type``, ``seed`` and anything else the writer adds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._atomic import atomic_path
from ..errors import InputError
from ._checks import corrupt_file_guard

_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


@dataclass
class PairedSample:
    """One paired RI / fluorescence field of view with optional ground truth."""

    ri: np.ndarray
    fl: dict[str, np.ndarray]
    voxel_size_um: tuple[float, float, float]
    medium_index: float = 1.337
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    cell_labels: np.ndarray | None = None
    nucleus_labels: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


def write_paired(path: str | Path, sample: PairedSample) -> Path:
    """Write ``sample`` to ``path`` (HDF5), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        ri = f.create_dataset("ri", data=sample.ri.astype(np.float32), **_COMPRESSION)
        ri.attrs["voxel_size_um"] = np.asarray(sample.voxel_size_um, dtype=np.float64)
        ri.attrs["medium_index"] = float(sample.medium_index)
        names = list(sample.fl)
        if names:
            fl = f.create_dataset(
                "fl", data=np.stack([sample.fl[n] for n in names]).astype(np.float32),
                **_COMPRESSION)
            fl.attrs["channel_names"] = names
        for name, mask in sample.masks.items():
            f.create_dataset(f"masks/{name}", data=mask.astype(np.uint8), **_COMPRESSION)
        for name in ("cell_labels", "nucleus_labels"):
            arr = getattr(sample, name)
            if arr is not None:
                f.create_dataset(name, data=arr.astype(np.int32), **_COMPRESSION)
        for name, arr in sample.extra.items():
            f.create_dataset(name, data=arr, **_COMPRESSION)
        for key, value in sample.attrs.items():
            f.attrs[key] = value
        f.attrs["voxel_size_um"] = np.asarray(sample.voxel_size_um, dtype=np.float64)
    return path


def read_paired(path: str | Path, targets: list[str] | None = None,
                load_extra: bool = True) -> PairedSample:
    """Read a paired HDF5 file written by :func:`write_paired` or by the paper's tools.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` file.
    targets : list of str, optional
        Fluorescence channels to load (default: all).
    load_extra : bool
        Also load masks, labels and other arrays.
    """
    path = Path(path).expanduser()
    with corrupt_file_guard(path):
        return _read_paired(path, targets, load_extra)


def _read_paired(path: Path, targets: list[str] | None, load_extra: bool) -> PairedSample:
    if not path.exists():
        raise InputError("no such file", path, "check the path")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"cannot open as HDF5 ({exc})", path,
                         "check that the file is a complete .h5 file") from None
    with f:
        if "ri" not in f:
            raise InputError("no 'ri' dataset", path,
                             "paired files need datasets 'ri' and 'fl' (Z, Y, X)")
        ri_ds = f["ri"]
        vs = ri_ds.attrs.get("voxel_size_um", f.attrs.get("voxel_size_um"))
        if vs is None:
            raise InputError("no 'voxel_size_um' attribute", path,
                             "add one to the 'ri' dataset: (z, y, x) in µm")
        vs = np.atleast_1d(np.asarray(vs, dtype=float))
        voxel_size = tuple(vs) if vs.size == 3 else (float(vs[0]),) * 3
        medium = float(np.asarray(ri_ds.attrs.get("medium_index", 1.337)).ravel()[0])
        fl: dict[str, np.ndarray] = {}
        if "fl" in f:
            ds = f["fl"]
            if ds.ndim == 3:
                name = ds.attrs.get("target", "fl")
                names = [name.decode() if isinstance(name, bytes) else str(name)]
                arrays = {names[0]: lambda: ds[()]}
            else:
                default = [f"ch{i}" for i in range(ds.shape[0])]
                names = [n.decode() if isinstance(n, bytes) else str(n)
                         for n in ds.attrs.get("channel_names", default)]
                arrays = {n: (lambda i=i: ds[i]) for i, n in enumerate(names)}
            for name in names:
                if targets is None or name in targets:
                    fl[name] = np.asarray(arrays[name](), dtype=np.float32)
            missing = [t for t in (targets or []) if t not in fl]
            if missing:
                raise InputError(f"fluorescence targets {missing} not in file (has {names})", path)
        sample = PairedSample(ri=np.asarray(ri_ds[()], dtype=np.float32), fl=fl,
                              voxel_size_um=voxel_size, medium_index=medium,
                              attrs={k: f.attrs[k] for k in f.attrs})
        if load_extra:
            if "masks" in f:
                sample.masks = {k: f["masks"][k][()].astype(bool) for k in f["masks"]}
            for name in ("cell_labels", "nucleus_labels"):
                if name in f:
                    setattr(sample, name, f[name][()])
            for name in ("ri_true", "bf", "dic"):
                if name in f:
                    sample.extra[name] = f[name][()]
    return sample
