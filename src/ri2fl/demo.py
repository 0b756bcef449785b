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
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .constants import TARGETS
from .errors import InputError
from .io import write_table
from .profile import feature_columns, group_counts, track_cells
from .profile.pipeline import ProfiledField, profile_volume
from .profile.validation import (
    channel_agreement,
    explain_agreement,
    feature_agreement,
    measure_pair,
)

#: Where the real HL60 cell lies in a checkout, and the small copy shipped in the package.
HL60_SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "hl60" / "hl60_ri.h5"
HL60_BUNDLED = Path(__file__).resolve().parent / "data" / "hl60_ri.h5"
HL60_MEDIUM_INDEX = 1.335


@dataclass(frozen=True)
class Stimulus:
    """The demo's known stimulus (an LPS-like response), applied by :func:`_stimulate`.

    Ground truth: the cytoplasm's protein concentration rises by ``cytoplasm_density_gain``
    (the nucleus, drawn relative to the cytoplasm, follows) and every lipid droplet's radius
    by ``droplet_radius_gain`` (its volume by the cube). Nothing else changes: the same
    cells, nuclei, nucleoli, mitochondria, actin and membrane.
    """

    cytoplasm_density_gain: float = 1.25
    droplet_radius_gain: float = 1.5

    def expected(self) -> pd.DataFrame:
        """The effects the analysis must recover: feature, direction, expected change."""
        density = 100 * (self.cytoplasm_density_gain - 1)
        volume = 100 * (self.droplet_radius_gain**3 - 1)
        return pd.DataFrame([
            ("cytoplasm_dry_mass_density_pg_per_um3", "up",
             f"+{density:.0f} % protein concentration (less in the measurement: "
             "mitochondria and droplets keep theirs)"),
            ("lipid_droplet_mean_volume_um3", "up",
             f"radius x {self.droplet_radius_gain:g}, volume +{volume:.0f} % (less for "
             "droplets below the detection floor)"),
        ], columns=["feature", "direction", "truth"])


#: Feature name patterns the stimulus changes: refractive index and dry mass of the cell,
#: cytoplasm and nucleus (whose index follows the cytoplasm's), of the nucleoli through the
#: tomograph's blur, the RI texture, and everything measured on the lipid droplets or their
#: channel. Every other feature (morphology, the five other channels, neighbours) is a
#: true null of the demo: a hit there is a false positive.
STIMULUS_PATTERNS: tuple[str, ...] = (
    r"^(cell|cytoplasm|nucleus|nucleoli)_(ri_|dry_mass)", r"_glcm_", r"_ri_gradient_",
    r"^lipid_droplet", r"_lipid_droplets_",
)


def stimulus_features(columns) -> list[str]:
    """The features of ``columns`` that the demo's stimulus touches (see
    :data:`STIMULUS_PATTERNS`)."""
    pattern = re.compile("|".join(STIMULUS_PATTERNS))
    return [c for c in columns if pattern.search(c)]


@dataclass(frozen=True)
class DemoPlan:
    """Design of the simulated experiment.

    Every cell type is imaged in ``fields_per_group`` fields per condition, or the number
    ``fields_per_type`` gives it; the fields are the replicates of the statistics.
    Macrophages (8-12 µm) fit about three whole cells in a 192 x 192 field, HEK 293 cells
    (12-18 µm) about three in a 256 x 256 one (``field_shapes``). HEK 293 cells hold few
    droplets (1-5), so their mean droplet volume varies much from field to field: a pilot
    run of 8 fields per group (seed 2021) measured a standardised effect of d = 1.22 on
    field means, and a two-sided Welch test at alpha = 0.01 needs 18 fields per group for
    80 % power at that effect. The full plan uses fresh seeds, not the pilot's fields.
    The time-lapse follows ``timelapse_cell_type`` cells of one field
    per condition over ``frames`` frames; the stimulus grows from 0 to full over them.
    """

    cell_types: tuple[str, ...] = ("macrophage", "hek293")
    conditions: tuple[str, ...] = ("control", "stimulated")
    fields_per_group: int = 8
    fields_per_type: tuple[tuple[str, int], ...] = (("hek293", 18),)
    shape: tuple[int, int, int] = (32, 192, 192)  # 6.4 x 28.8 x 28.8 µm
    field_shapes: tuple[tuple[str, tuple[int, int, int]], ...] = (
        ("hek293", (32, 256, 256)),)
    timelapse_cell_type: str = "macrophage"
    timelapse_conditions: tuple[str, ...] | None = None  # None: every condition
    timelapse_shape: tuple[int, int, int] = (32, 256, 256)
    frames: int = 3
    frame_interval_s: float = 1800.0  # every 30 min, as the paper's LPS time-lapse
    stimulus: Stimulus = Stimulus()
    tta: int = 2
    mc: int = 2
    seed: int = 2027  # 2021 was the pilot's

    def fields_of(self, cell_type: str) -> int:
        """Fields per condition (the replicates) of ``cell_type``."""
        return dict(self.fields_per_type).get(cell_type, self.fields_per_group)

    def shape_of(self, cell_type: str) -> tuple[int, int, int]:
        """Field shape (z, y, x) of ``cell_type``."""
        return dict(self.field_shapes).get(cell_type, self.shape)


FULL = DemoPlan()
QUICK = DemoPlan(fields_per_group=3, fields_per_type=(), field_shapes=(), shape=(32, 192, 192),
                 frames=2, timelapse_conditions=("stimulated",), timelapse_shape=(32, 192, 192))
# tests: one cell type, one field per condition, two frames
TINY = DemoPlan(cell_types=("macrophage",), conditions=("control", "stimulated"),
                fields_per_group=1, fields_per_type=(), shape=(24, 96, 96), field_shapes=(),
                frames=2,
                timelapse_shape=(24, 96, 96), tta=2, mc=2)


@dataclass
class DemoResult:
    """What the demo wrote."""

    out_dir: Path
    features: pd.DataFrame
    report: Path
    tables: list[Path]
    volumes: list[Path]
    hl60: pd.DataFrame | None
    validation_r: float  # median per-feature r, inferred vs true fluorescence
    n_cells_simulated: int
    seconds: float
    log: list[str] = field(default_factory=list)
    counts: pd.DataFrame | None = None  # design_counts: what the report counts too


def _stimulate(cells: list, strength: float, stimulus: Stimulus = Stimulus()) -> list:
    """Denser cytoplasm and larger lipid droplets (an LPS-like response of macrophages);
    ``strength`` 0 leaves the cells as they are, 1 applies the full :class:`Stimulus`."""
    density = 1 + (stimulus.cytoplasm_density_gain - 1) * strength
    radius = 1 + (stimulus.droplet_radius_gain - 1) * strength
    out = []
    for c in cells:
        droplets = [(p, r * radius, dn) for p, r, dn in c.droplets]
        out.append(dataclasses.replace(c, cyto_conc=c.cyto_conc * density,
                                       droplets=droplets, _lookup=None))
    return out


def _outline_um(cell) -> float:
    return float(cell.outline_radius(np.linspace(0, 2 * np.pi, 181)).max())


def _layout(cell_type: str, rng: np.random.Generator, shape, margin_um: float = 1.0,
            max_failures: int = 20) -> list:
    """Cells of ``cell_type`` packed into a field, every cell body whole inside it.

    Cells are drawn one by one and placed at a random free spot where their body (outline
    plus ``margin_um``) fits (the first at the centre if none does), until
    ``max_failures`` cells in a row found none. Filopodia that would leave the field are
    dropped (a microscopist centres fields on whole cells; thin protrusions still cross
    between neighbours).
    """
    from .constants import CANONICAL_VOXEL_SIZE_UM
    from .simulate.phantoms import FAMILIES, make_cell
    from .simulate.timelapse import translate

    lz, ly, lx = (n * v for n, v in zip(shape, CANONICAL_VOXEL_SIZE_UM))
    z_base = min(rng.uniform(1.0, 2.0), 0.15 * lz)
    max_height = max(lz - z_base - 0.8, 1.5)
    fp = FAMILIES[cell_type]
    cells, radii, failures = [], [], 0
    while failures < max_failures:
        cell = make_cell(cell_type, rng, (0.0, 0.0), z_base, None, max_height, fp)
        r = _outline_um(cell)
        spot = _free_spot(rng, r, margin_um, (ly, lx), cells, radii)
        if spot is None and not cells:  # a field too small for a whole cell: centre one
            spot = (ly / 2, lx / 2)
        if spot is None:
            failures += 1
            continue
        placed = translate(cell, 0.0, *spot)
        placed.filopodia = [f for f in placed.filopodia
                            if np.all((f.points[:, 1:] > 0.3) & (f.points[:, 1:] < (ly - 0.3,
                                                                                  lx - 0.3)))]
        cells.append(placed)
        radii.append(r)
    return cells


def _free_spot(rng: np.random.Generator, radius: float, margin: float,
               size: tuple[float, float], cells: list, radii: list,
               tries: int = 30) -> tuple[float, float] | None:
    """A centre where a body of ``radius`` fits inside the field, ``margin`` from its edge,
    overlapping no placed cell by more than 10 % of the radii (None: none in ``tries``)."""
    (ly, lx), reach = size, radius + margin
    if ly <= 2 * reach or lx <= 2 * reach:
        return None
    for _ in range(tries):
        c = (rng.uniform(reach, ly - reach), rng.uniform(reach, lx - reach))
        if all(np.hypot(c[0] - o.center[0], c[1] - o.center[1]) > 0.9 * (radius + ro)
               for o, ro in zip(cells, radii)):
            return c
    return None


def _simulate(cell_type: str, seed: int, shape, strength: float,
              stimulus: Stimulus = Stimulus()):
    """One simulated field; ``strength`` 0 is control, 1 fully stimulated."""
    from .simulate import simulate_fov

    cells = _layout(cell_type, np.random.default_rng(seed), shape)
    return simulate_fov(cell_type, seed=seed, shape=shape,
                        cells=_stimulate(cells, strength, stimulus) if strength else cells,
                        medium_index=1.337)


def _timelapse(plan: DemoPlan, seed: int, stimulated: bool) -> list:
    """Frames of one field: stage drift, crawling cells, bleaching; when ``stimulated``,
    every cell's stimulus grows from none in the first frame to full in the last."""
    from .simulate import simulate_fov
    from .simulate.timelapse import translate

    rng = np.random.default_rng([seed, 7])
    base = _layout(plan.timelapse_cell_type, rng, plan.timelapse_shape, margin_um=1.5)
    direction = rng.uniform(0, 2 * np.pi)
    velocities = [rng.normal(0, 0.15, 2) for _ in base]
    frames = []
    for t in range(plan.frames):
        f = t / max(plan.frames - 1, 1)
        drift = np.array([np.sin(direction), np.cos(direction)]) * 0.2 * t
        cells = [translate(c, 0.0, *(drift + v * t)) for c, v in zip(base, velocities)]
        if stimulated:
            cells = _stimulate(cells, f, plan.stimulus)
        frames.append(simulate_fov(plan.timelapse_cell_type, seed=seed,
                                   shape=plan.timelapse_shape, cells=cells, timepoint=t,
                                   texture_shift_um=(0.0, *drift),
                                   bleach_half_life_frames=20.0, medium_index=1.337))
    return frames


def _snapshot_plan(plan: DemoPlan) -> list[tuple[str, str, int, int, float]]:
    """The snapshot fields in order: (cell type, condition, index, seed, stimulus strength);
    seeds run from ``plan.seed + 1``."""
    fields, seed = [], plan.seed
    for cell_type in plan.cell_types:
        for condition in plan.conditions:
            strength = 0.0 if condition == plan.conditions[0] else 1.0
            for k in range(plan.fields_of(cell_type)):
                seed += 1
                fields.append((cell_type, condition, k, seed, strength))
    return fields


def _simulate_snapshot(plan: DemoPlan, spec: tuple[str, str, int, int, float]):
    cell_type, _, _, seed, strength = spec
    return _simulate(cell_type, seed, plan.shape_of(cell_type), strength, plan.stimulus)


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
        Experiment design: :data:`FULL` (under 10 minutes on 2 cores), :data:`QUICK`,
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
    t0 = time.perf_counter()
    seg_options = {"model": segment_model, "cell_model": cell_model}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables, volumes, examples, log = [], [], [], []
    pairs: list[tuple[pd.DataFrame, pd.DataFrame]] = []
    channel_r: list[dict[str, float]] = []
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
        writes.append(writer.submit(_write_volumes, out_dir, name, field_))
        true, inferred = measure_pair(fov.ri, fov.cell_labels, fov.nucleus_labels, fov.fl,
                                      field_.fl, fov.voxel_size_um, fov.medium_index)
        pairs.append((true.assign(field=name), inferred))
        channel_r.append(channel_agreement(fov.fl, field_.fl, fov.cell_labels))
        whole = int((~table["cut_by_edge"]).sum())
        say(f"{name}: {len(table)} cells segmented, {whole} whole "
            f"({int(fov.cell_labels.max())} simulated)")
        return field_

    # The networks keep both cores busy only part of the time: the next field is simulated,
    # and the last one's volumes written, on threads beside the field being processed (one
    # field ahead at most, so memory stays that of two fields).
    writes: list[Future] = []
    with ThreadPoolExecutor(1, "ri2fl-demo-write") as writer, \
            ThreadPoolExecutor(1, "ri2fl-demo-simulate") as simulator:
        snapshots = _snapshot_plan(plan)
        upcoming = simulator.submit(_simulate_snapshot, plan, snapshots[0]) if snapshots else None
        for i, (cell_type, condition, k, _, _) in enumerate(snapshots):
            fov = upcoming.result()
            if i + 1 < len(snapshots):
                upcoming = simulator.submit(_simulate_snapshot, plan, snapshots[i + 1])
            name = f"{cell_type}_{condition}_{k}"
            field_ = process(name, fov, {"cell_type": cell_type, "condition": condition,
                                         "frame": 0, "position": name})
            if k == 0 and condition == plan.conditions[-1]:
                examples.append(_example(name, field_, oracle))
        snapshot_rows = sum(len(t) for t in tables)
        seed = plan.seed + len(snapshots)
        for condition in plan.conditions:
            seed += 1
            if plan.timelapse_conditions is not None and \
                    condition not in plan.timelapse_conditions:
                continue
            frames = _timelapse(plan, seed, stimulated=condition != plan.conditions[0])
            for t, fov in enumerate(frames):
                name = f"timelapse_{condition}_t{t}"
                process(name, fov, {"cell_type": plan.timelapse_cell_type,
                                    "condition": condition, "frame": t,
                                    "time_s": t * plan.frame_interval_s,
                                    "position": f"timelapse_{condition}"})
        for write in writes:
            volumes.extend(write.result())
    features = _assemble(tables, snapshot_rows)
    agreement = _agreement(pairs, channel_r, out_dir)
    say(agreement_sentence(agreement))
    counts = design_counts(features)
    say("cells per group (snapshots: whole cells and fields; time-lapse: tracked cells):\n"
        + counts.to_string(index=False))

    hl60_table = None
    run_hl60 = run_hl60 and not oracle
    hl60_file = _hl60_path(Path(hl60) if hl60 else None) if run_hl60 else None
    if hl60_file is not None:
        hl60_table, hl60_field = _run_hl60(hl60_file, out_dir, model, plan, volumes,
                                           seg_options)
        say(f"HL60 (real, {hl60_file.name}): {len(hl60_table)} cell(s), volume "
            + ", ".join(f"{v:.0f} µm³" for v in hl60_table["cell_volume_um3"]))
        example = _example("HL60 (real cell, PBS, 0.139 µm voxels)", hl60_field)
        example.warning = HL60_WARNING
        examples.append(example)
    elif run_hl60:
        say("HL60 cell not found: skipped")

    note = _note(features, hl60_table)
    parquet = write_table(features, out_dir / "features.parquet", overwrite=True)
    csv = write_table(features, out_dir / "features.csv", overwrite=True)
    _write_design(out_dir, plan, features)
    report = _report(features, out_dir, plan, examples, note, agreement, oracle)
    say(f"report written: {report}")
    return DemoResult(out_dir=out_dir, features=features, report=report,
                      tables=[parquet, csv], volumes=volumes, hl60=hl60_table,
                      validation_r=float(agreement.per_feature["r"].median()),
                      n_cells_simulated=n_true, seconds=time.perf_counter() - t0, log=log,
                      counts=counts)


#: The HL60 panel's warning: a real cell outside the simulated training distribution.
HL60_WARNING = ("OUT OF DOMAIN: a real HL60 cell; the models were trained on simulated "
                "cells and misread it (see its uncertainty). Do not read biology from it.")


def _assemble(tables: list[pd.DataFrame], snapshot_rows: int) -> pd.DataFrame:
    """One feature table: snapshots, then the time-lapse rows with their track ids."""
    features = pd.concat(tables, ignore_index=True)
    features["track_id"] = -1
    lapse = features.iloc[snapshot_rows:]
    if len(lapse):
        tracked = track_cells(lapse, max_distance_um=5.0)
        features.loc[tracked.index, "track_id"] = tracked["track_id"]
    first = ["field", "cell_type", "condition", "position", "frame", "time_s", "track_id"]
    return features[[c for c in first if c in features] +
                    [c for c in features.columns if c not in first]]


def design_counts(features: pd.DataFrame) -> pd.DataFrame:
    """The demo's n: whole cells and fields per cell type and condition in the snapshots,
    and tracked whole cells per condition in the time-lapse. The console and the report
    print these same numbers."""
    whole = features[~features["cut_by_edge"].astype(bool)]
    lapse = whole["time_s"].notna() if "time_s" in whole else pd.Series(False, whole.index)
    snap = group_counts(whole[~lapse], ["cell_type", "condition"], "field").rename(
        columns={"cells": "whole cells", "replicates": "fields"})
    snap.insert(0, "experiment", "snapshots")
    rows = [snap]
    if lapse.any():
        tracks = group_counts(whole[lapse], ["cell_type", "condition"]).rename(
            columns={"cells": "whole cells"})
        tracks.insert(0, "experiment", "time-lapse (tracks)")
        tracks["fields"] = 1
        rows.append(tracks)
    return pd.concat(rows, ignore_index=True)


#: Whole cells needed to measure the feature agreement on whole cells only.
MIN_AGREEMENT_CELLS = 20


def _agreement(pairs, channel_r, out_dir: Path):
    from .report import Agreement

    true = pd.concat([a for a, _ in pairs], ignore_index=True)
    inferred = pd.concat([b for _, b in pairs], ignore_index=True)
    # the cells the statistics use: a cell cut by the field's edge is left out there too
    # (every cell when too few are whole, as in the tiniest plans)
    whole = ~true["cut_by_edge"].astype(bool).to_numpy()
    cells = "whole cells" if whole.sum() >= MIN_AGREEMENT_CELLS else "cells"
    if cells == "whole cells":
        true, inferred = (t[whole].reset_index(drop=True) for t in (true, inferred))
    _, per_feature = feature_agreement(true, inferred)
    channels = pd.DataFrame(channel_r).mean().rename("voxel_r").rename_axis("channel")
    explained = explain_agreement(true, inferred, per_feature,
                                  channel_r=channels.to_dict(),
                                  groups={"field": true["field"]})
    write_table(explained, out_dir / "feature_agreement.csv", overwrite=True)
    return Agreement(explained, n_cells=len(true), channels=channels.reset_index(),
                     cells=cells)


def agreement_sentence(agreement) -> str:
    """One line saying what the feature agreement is and what it means."""
    per = agreement.per_feature
    below = per[per["r"] < agreement.goal]
    worst = ", ".join(f"{f} ({c})" for f, c in below.sort_values("r")[["feature", "cause"]]
                      .head(3).to_numpy())
    return (f"features on inferred vs true fluorescence, same {agreement.n_cells} "
            f"{agreement.cells}: "
            f"median per-feature r = {per['r'].median():.3f} over {len(per)} features "
            f"(paper: 0.97 on real fluorescence); {len(below)} below {agreement.goal:g}"
            + (f", e.g. {worst}" if worst else "") + "; see feature_agreement.csv")


def _note(features: pd.DataFrame, hl60_table: pd.DataFrame | None) -> str:
    unc = "cell_nucleus_uncertainty_mean_au"
    if hl60_table is None or not features[unc].notna().any():
        return ""
    return (f"Nucleus-channel uncertainty, mean per cell: simulated cells "
            f"{features[unc].mean():.3g}, real HL60 cell (out of domain) "
            f"{hl60_table[unc].mean():.3g}.")


def _write_design(out_dir: Path, plan: DemoPlan, features: pd.DataFrame) -> Path:
    """``design.json``: the plan, the stimulus and the features it touches (ground truth)."""
    design = {"plan": dataclasses.asdict(plan),
              "stimulus": dataclasses.asdict(plan.stimulus),
              "expected": plan.stimulus.expected().to_dict(orient="records"),
              "touched_features": stimulus_features(feature_columns(features))}
    path = out_dir / "design.json"
    path.write_text(json.dumps(design, indent=2, default=str), encoding="utf-8")
    return path


def _report(features: pd.DataFrame, out_dir: Path, plan: DemoPlan, examples: list, note: str,
            agreement, oracle: bool) -> Path:
    from .report import KnownTruth, build_report

    stim = plan.stimulus
    truth = KnownTruth(
        plan.stimulus.expected(), stimulus_features(feature_columns(features)),
        f"Ground truth of the simulation: in the stimulated fields every cell's cytoplasm "
        f"holds {100 * (stim.cytoplasm_density_gain - 1):.0f} % more protein and every lipid "
        f"droplet has a {stim.droplet_radius_gain:g}x larger radius; nothing else differs. "
        f"Fields per condition (the replicates): "
        + ", ".join(f"{t} {plan.fields_of(t)}" for t in plan.cell_types)
        + "."
        + (" Measured on the simulator's true fluorescence and masks (--ground-truth)."
           if oracle else " Measured on inferred fluorescence and segmented cells."))
    return build_report(features, out_dir / "report.html", group_by="condition",
                        within="cell_type", replicate="field", reference=plan.conditions[0],
                        colour_by=["cell_type", "condition"], examples=examples,
                        title="ri2fl demo: simulated macrophage / HEK 293 experiment",
                        note=note, truth=truth, agreement=agreement, overwrite=True)


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
