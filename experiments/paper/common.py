"""Shared pieces of the experiments: held-out simulated data, model loading, result files."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ri2fl.errors import ConfigError

log = logging.getLogger(__name__)

#: Seeds of held-out FOVs start here, far from the seeds the training data are drawn from
#: (the training recipes count up from 0), so no test FOV was ever seen in training.
HELD_OUT_SEED0 = 100_000

#: Modest FOV for 2 shared CPU cores: 32 x 192 x 192 voxels = 6.4 x 28.8 x 28.8 µm.
SMALL_SHAPE: tuple[int, int, int] = (32, 192, 192)


def make_fovs(out_dir: str | Path, cell_types: Sequence[str], n_per_type: int,
              shape: Sequence[int] = SMALL_SHAPE, seed0: int = HELD_OUT_SEED0,
              modalities: Sequence[str] = (), split: str = "test", **sim_kwargs: Any) -> Path:
    """Simulate ``n_per_type`` paired FOVs per cell type into ``out_dir`` (+ manifest.csv).

    Files are named ``<cell type>_<seed>_<Z>x<Y>x<X>.h5``; those already there (with the
    requested modalities) are kept, since the same seed and options give the same data: the
    experiments share one data folder and an interrupted one resumes. Returns the path of a
    manifest listing exactly these FOVs (``manifest_<hash>.csv``).
    """
    from ri2fl.simulate import CELL_TYPES
    from ri2fl.simulate.sets import FieldSpec, simulate_fields, write_manifest

    unknown = [c for c in cell_types if c not in CELL_TYPES]
    if unknown:
        raise ConfigError(f"unknown cell types {unknown}", "--cell-types",
                          f"choose from {list(CELL_TYPES)}")
    tag = "x".join(str(int(n)) for n in shape)
    fields = [FieldSpec(ct, split, seed, tuple(shape), modalities=tuple(modalities),
                        options=sim_kwargs, path=f"{ct}_{seed}_{tag}.h5")
              for ct in cell_types for seed in (seed0 + 1000 * CELL_TYPES.index(ct) + i
                                                for i in range(n_per_type))]
    # files already there with the modalities are kept; only a file ri2fl wrote is replaced
    simulate_fields(out_dir, fields)
    table = pd.DataFrame([{"path": f.file, "cell_type": f.cell_type, "seed": f.seed,
                           "split": f.split} for f in fields])
    # one manifest per request, so experiments sharing the folder do not overwrite each other
    key = hashlib.sha1(table.to_csv(index=False).encode()).hexdigest()[:8]
    return write_manifest(out_dir, fields, f"manifest_{key}.csv")


def _write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def write_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a table atomically."""
    return _write_atomically(Path(path), table.to_csv(index=False, float_format="%.6g"))


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    """Write a JSON summary (numbers rounded for reading) atomically."""
    path = Path(path)

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, (np.floating, float)):
            return None if not np.isfinite(v) else round(float(v), 5)
        if isinstance(v, np.integer):
            return int(v)
        return v

    return _write_atomically(path, json.dumps(plain(data), indent=2) + "\n")


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a GitHub-flavoured markdown table (pandas needs tabulate for this)."""
    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "–" if not np.isfinite(v) else f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 \
                else f"{v:.{digits}f}"
        return str(v)

    head = "| " + " | ".join(map(str, table.columns)) + " |"
    sep = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in table.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def mean_sd(values: pd.Series, digits: int = 3) -> str:
    """'mean ± s.d.' of a column."""
    v = values.replace([np.inf, -np.inf], np.nan).dropna()
    if v.empty:
        return "–"
    sd = v.std(ddof=1) if len(v) > 1 else float("nan")
    if not np.isfinite(sd):
        return f"{v.mean():.{digits}f}"
    return f"{v.mean():.{digits}f} ± {sd:.{digits}f}"


def load_model(name_or_path: str | Path, device: str = "cpu") -> Any:
    """``ri2fl.models.load`` of a shipped name, checkpoint or training folder."""
    from ri2fl.models import load

    return load(str(name_or_path), device=device)


class Timer:
    """Wall-clock seconds of a block, for the run records."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
