"""The end-to-end demonstration behind ``ri2fl demo`` (the README's main command).

A small simulated experiment goes through the whole pipeline: two cell types (macrophages
and HEK 293 cells), two conditions (control and "stimulated": LPS-like, denser cytoplasm
and larger lipid droplets), and a short time-lapse of each condition (drifting, crawling
cells; in the stimulated one the central cell spreads lamellipodia); the six fluorescence
channels are inferred with uncertainty by the shipped model, organelles and cells are
segmented by the shipped networks, every cell is profiled, and a report is written. The
real HL60 cell (ODTbrain, CC0) goes through the same steps as an out-of-distribution check.
Features measured on inferred and on the simulator's true fluorescence are compared.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .constants import TARGETS
from .errors import InputError
from .io import write_table
from .profile import track_cells
from .profile.pipeline import ProfiledField, profile_volume
from .profile.validation import feature_agreement, measure_pair

#: Where the real HL60 cell lies in a checkout, and the small copy shipped in the package.
HL60_SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "hl60" / "hl60_ri.h5"
HL60_BUNDLED = Path(__file__).resolve().parent / "data" / "hl60_ri.h5"
HL60_MEDIUM_INDEX = 1.335


@dataclass(frozen=True)
class DemoPlan:
    """Size of the simulated experiment."""

    cell_types: tuple[str, ...] = ("macrophage", "hek293")
    conditions: tuple[str, ...] = ("control", "stimulated")
    fields_per_group: int = 1
    shape: tuple[int, int, int] = (32, 160, 160)  # 6.4 x 24 x 24 µm
    timelapse_cell_type: str = "macrophage"
    timelapse_conditions: tuple[str, ...] | None = None  # None: every condition
    frames: int = 3
    frame_interval_s: float = 1800.0  # every 30 min, as the paper's LPS time-lapse
    tta: int = 2
    mc: int = 2
    seed: int = 2021


FULL = DemoPlan()
QUICK = DemoPlan(shape=(32, 128, 128), frames=2, timelapse_conditions=("stimulated",))
# tests: one cell type, one field per condition, two frames
TINY = DemoPlan(cell_types=("macrophage",), conditions=("control", "stimulated"),
                fields_per_group=1, shape=(24, 96, 96), frames=2, tta=2, mc=2)


@dataclass
class DemoResult:
    """What the demo wrote."""

    out_dir: Path
    features: pd.DataFrame
    report: Path
    tables: list[Path]
    volumes: list[Path]
    hl60: pd.DataFrame | None
    validation_r: float
    n_cells_simulated: int
    seconds: float
    log: list[str] = field(default_factory=list)


def _stimulate(cells: list, strength: float) -> list:
    """Denser cytoplasm and larger lipid droplets (an LPS-like response of macrophages)."""
    out = []
    for c in cells:
        droplets = [(p, r * (1 + 0.5 * strength), dn) for p, r, dn in c.droplets]
        out.append(dataclasses.replace(c, cyto_conc=c.cyto_conc * (1 + 0.25 * strength),
                                       droplets=droplets, _lookup=None))
    return out


def _simulate(cell_type: str, seed: int, shape, strength: float):
    """One simulated field; ``strength`` 0 is control, 1 fully stimulated."""
    from .constants import CANONICAL_VOXEL_SIZE_UM
    from .simulate import simulate_fov
    from .simulate.fov import layout_cells

    cells = layout_cells(cell_type, np.random.default_rng(seed), shape,
                         CANONICAL_VOXEL_SIZE_UM)
    return simulate_fov(cell_type, seed=seed, shape=shape,
                        cells=_stimulate(cells, strength) if strength else cells,
                        medium_index=1.337)


def _timelapse(plan: DemoPlan, seed: int, event: str | None) -> list:
    """Frames of one field: drift, crawling cells, and the simulator's stimulation event
    (the central cell spreads lamellipodia and remodels its actin) when ``event`` is set."""
    from .simulate import simulate_timelapse

    return simulate_timelapse(plan.timelapse_cell_type, seed=seed, n_frames=plan.frames,
                              shape=plan.shape, event=event, medium_index=1.337)


def _write_volumes(out_dir: Path, name: str, field_: ProfiledField) -> list[Path]:
    """Two OME-Zarr stores per field, in the layout of ``ri2fl predict`` and ``ri2fl
    segment``: the RI (float32) with the cell and nucleus instances and organelle masks as
    its NGFF ``labels`` group, and the inferred fluorescence with both uncertainty
    components (:func:`ri2fl.io.write_prediction`)."""
    from .io import write_ome_zarr, write_prediction

    vol_dir = out_dir / "volumes"
    labels = {"cell_labels": field_.cell_labels, "nucleus_labels": field_.nucleus_labels,
              **field_.masks}
    # a rerun of the demo replaces its own outputs (and never anything ri2fl did not write)
    ri = write_ome_zarr(vol_dir / f"{name}_ri.ome.zarr", field_.ri.astype(np.float32),
                        field_.voxel_size_um, channel_names=["ri"],
                        medium_index=field_.medium_index, labels=labels, overwrite=True)
    fl = write_prediction(vol_dir / f"{name}_fluorescence.ome.zarr", field_.fl,
                          field_.voxel_size_um, uncertainty_data=field_.uncertainty_data,
                          uncertainty_model=field_.uncertainty_model,
                          medium_index=field_.medium_index, overwrite=True)
    return [ri, fl]


def _hl60_path(path: Path | None) -> Path | None:
    for candidate in (path, HL60_SHARED, HL60_BUNDLED):
        if candidate is not None and Path(candidate).exists():
            return Path(candidate)
    return None


def run_demo(out_dir: str | Path, plan: DemoPlan = FULL, *, model: str = "default",
             segment_model: str = "segment-default", cell_model: str = "cell-default",
             hl60: str | Path | None = None, run_hl60: bool = True, oracle: bool = False,
             echo: Callable[[str], None] = print) -> DemoResult:
    """Run the demonstration into ``out_dir`` and return what it wrote.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    plan : DemoPlan
        Experiment size: :data:`FULL` (about 5 minutes on 2 cores), :data:`QUICK`,
        :data:`TINY` (tests).
    model, segment_model, cell_model : str
        Fluorescence, organelle and cell models (shipped names or checkpoints).
    hl60 : path, optional
        The HL60 RI file (default: ``shared/data/hl60`` next to the checkout, else the copy
        shipped in the package).
    run_hl60 : bool
        Also profile the real HL60 cell.
    oracle : bool
        Skip the networks: profile the simulator's true fluorescence, masks and cells
        (an upper bound, and a check of profiling and reporting without models). The HL60
        cell, which has no ground truth, is then skipped.
    echo : callable
        Where progress lines go.
    """
    from .report import build_report

    t0 = time.perf_counter()
    seg_options = {"model": segment_model, "cell_model": cell_model}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables, volumes, examples, log = [], [], [], []
    true_tables, inferred_tables = [], []
    n_true = 0

    def say(msg: str) -> None:
        line = f"[{time.perf_counter() - t0:6.1f} s] {msg}"
        log.append(line)
        echo(line)

    def process(name: str, fov, meta: dict) -> ProfiledField:
        nonlocal n_true
        if oracle:
            field_ = profile_volume(fov.ri, fov.voxel_size_um, fov.medium_index, fl=fov.fl,
                                    cell_labels=fov.cell_labels,
                                    nucleus_labels=fov.nucleus_labels, masks=fov.masks)
        else:
            field_ = profile_volume(fov.ri, fov.voxel_size_um, fov.medium_index, model=model,
                                    tta=plan.tta, mc=plan.mc, seed=plan.seed,
                                    segment_options=seg_options)
        table = field_.table
        for key, value in {"field": name, **meta}.items():
            table[key] = value
        table["n_cells_simulated"] = int(fov.cell_labels.max())
        n_true += int(fov.cell_labels.max())
        tables.append(table)
        volumes.extend(_write_volumes(out_dir, name, field_))
        true, inferred = measure_pair(fov.ri, fov.cell_labels, fov.nucleus_labels, fov.fl,
                                      field_.fl, fov.voxel_size_um, fov.medium_index)
        true_tables.append(true)
        inferred_tables.append(inferred)
        say(f"{name}: {len(table)} cells segmented ({int(fov.cell_labels.max())} simulated)")
        return field_

    seed = plan.seed
    for cell_type in plan.cell_types:
        for condition in plan.conditions:
            strength = 0.0 if condition == plan.conditions[0] else 1.0
            for k in range(plan.fields_per_group):
                seed += 1
                fov = _simulate(cell_type, seed, plan.shape, strength)
                name = f"{cell_type}_{condition}_{k}"
                field_ = process(name, fov, {"cell_type": cell_type, "condition": condition,
                                             "frame": 0, "position": name})
                if k == 0 and condition == plan.conditions[-1]:
                    examples.append(_example(name, field_, oracle))
    snapshot_rows = sum(len(t) for t in tables)
    for condition in plan.conditions:
        seed += 1
        if plan.timelapse_conditions is not None and condition not in plan.timelapse_conditions:
            continue
        event = None if condition == plan.conditions[0] else "stimulation"
        for t, fov in enumerate(_timelapse(plan, seed, event)):
            name = f"timelapse_{condition}_t{t}"
            process(name, fov, {"cell_type": plan.timelapse_cell_type, "condition": condition,
                                "frame": t, "time_s": t * plan.frame_interval_s,
                                "position": f"timelapse_{condition}"})
    features = pd.concat(tables, ignore_index=True)
    lapse = features.iloc[snapshot_rows:]
    if len(lapse):
        tracked = track_cells(lapse, max_distance_um=5.0)
        features["track_id"] = -1
        features.loc[tracked.index, "track_id"] = tracked["track_id"]
    first = ["field", "cell_type", "condition", "position", "frame", "time_s", "track_id"]
    features = features[[c for c in first if c in features] +
                         [c for c in features.columns if c not in first]]

    r, per_feature = feature_agreement(pd.concat(true_tables, ignore_index=True),
                                       pd.concat(inferred_tables, ignore_index=True))
    write_table(per_feature, out_dir / "feature_agreement.csv", overwrite=True)
    say(f"features on inferred vs true fluorescence: r = {r:.3f} over "
        f"{len(per_feature)} features (paper: 0.97)")

    hl60_table = None
    run_hl60 = run_hl60 and not oracle
    hl60_file = _hl60_path(Path(hl60) if hl60 else None) if run_hl60 else None
    if hl60_file is not None:
        hl60_table, hl60_field = _run_hl60(hl60_file, out_dir, model, plan, volumes,
                                           seg_options)
        say(f"HL60 (real, {hl60_file.name}): {len(hl60_table)} cell(s), volume "
            + ", ".join(f"{v:.0f} µm³" for v in hl60_table["cell_volume_um3"]))
        examples.append(_example("HL60 (real cell, PBS, 0.139 µm voxels)", hl60_field))
    elif run_hl60:
        say("HL60 cell not found: skipped")

    note = (f"Features on inferred vs simulated-true fluorescence: r = {r:.3f} "
            "(paper: 0.97).")
    unc = "cell_nucleus_uncertainty_mean_au"
    if hl60_table is not None and features[unc].notna().any():
        note += (f" Nucleus-channel uncertainty, mean per cell: simulated cells "
                 f"{features[unc].mean():.3g}, real HL60 cell (out of distribution) "
                 f"{hl60_table[unc].mean():.3g}.")
    parquet = write_table(features, out_dir / "features.parquet", overwrite=True)
    csv = write_table(features, out_dir / "features.csv", overwrite=True)
    report = build_report(features, out_dir / "report.html", group_by="condition",
                          colour_by=["cell_type", "condition"], examples=examples,
                          title="ri2fl demo: simulated macrophage / HEK 293 experiment",
                          note=note, overwrite=True)
    say(f"report written: {report}")
    return DemoResult(out_dir=out_dir, features=features, report=report,
                      tables=[parquet, csv], volumes=volumes, hl60=hl60_table,
                      validation_r=r, n_cells_simulated=n_true,
                      seconds=time.perf_counter() - t0, log=log)


def _example(title: str, field_: ProfiledField, oracle: bool = False):
    from .report import ExampleField

    return ExampleField(title, field_.ri, field_.voxel_size_um, field_.cell_labels,
                        {k: v for k, v in field_.fl.items() if k in TARGETS},
                        field_.uncertainty, field_.medium_index,
                        fl_label="true fluorescence" if oracle else "inferred fluorescence")


def load_hl60(path: str | Path | None = None) -> tuple[np.ndarray, tuple, float]:
    """The real HL60 cell: RI (float32), voxel size (z, y, x) µm and medium index.

    Reads the shared copy, or the copy shipped in the package (uint16 packed with CF
    ``scale_factor`` / ``add_offset``: RI to 1e-5, below its 3e-5 noise), through
    :func:`ri2fl.io.read`.
    """
    from .io import read

    path = _hl60_path(Path(path) if path else None)
    if path is None:
        raise InputError("the HL60 cell is in neither shared/data/hl60 nor the package",
                         HL60_BUNDLED, "reinstall ri2fl or pass --hl60 PATH")
    vol = read(path)
    if vol.axes != "zyx":
        raise InputError(f"expected one RI volume, got axes {vol.axes}", path)
    return (np.asarray(vol.data, np.float32), vol.voxel_size_um,
            vol.medium_index or HL60_MEDIUM_INDEX)


def _run_hl60(path: Path, out_dir: Path, model: str, plan: DemoPlan, volumes: list[Path],
              seg_options: dict) -> tuple[pd.DataFrame, ProfiledField]:
    ri, voxel, medium = load_hl60(path)
    field_ = profile_volume(ri, voxel, medium, model=model, tta=plan.tta, mc=plan.mc,
                            seed=plan.seed, segment_options=seg_options)
    table = field_.table
    table.insert(0, "source", str(path))
    write_table(table, out_dir / "hl60" / "hl60_features.csv", overwrite=True)
    volumes.extend(_write_volumes(out_dir / "hl60", "hl60", field_))
    return table, field_
