"""Evaluate models on paired RI / fluorescence data: per-FOV metrics, summaries, t-tests.

The data are paired files (``ri2fl.io.read_paired_any``: paired HDF5, TCF with fluorescence,
OME-Zarr with an ``ri`` channel), listed by a manifest (``manifest.csv`` with columns path,
cell_type, seed, split) or found in a folder. Each FOV
is predicted with ``ri2fl.infer.predict_volume`` (or the model's own input for BF2FL / DIC2FL
models) and compared with its true fluorescence target by target.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..constants import TARGETS
from ..errors import ConfigError, InputError
from ..io.paired import PAIRED_SUFFIXES, PairedSample, read_paired_any
from ..progress import progress
from .metrics import mae, pcc, psnr, ssim
from .structures import (
    TARGET_KINDS,
    Structures,
    detect_structures,
    match_structures,
    matched_by_size,
    misses_by_cause,
    structure_differences,
    structure_records,
    structure_summary,
)

log = logging.getLogger(__name__)

#: Image metrics in every metrics.csv row, in this order.
IMAGE_METRICS: tuple[str, ...] = ("pcc", "ssim", "psnr", "mae")
#: Structure metrics added for targets with countable structures (see TARGET_KINDS).
STRUCTURE_METRICS: tuple[str, ...] = ("n_true", "n_pred", "fraction_matched",
                                      "fraction_within_0.5um", "mean_distance_um",
                                      "intensity_r")
#: Uncertainty metrics when the prediction has uncertainty maps.
UNCERTAINTY_METRICS: tuple[str, ...] = ("uncertainty_mean", "uncertainty_spearman")
#: Voxels drawn (at random, fixed seed) for the uncertainty-error Spearman correlation.
SPEARMAN_MAX_VOXELS = 200_000
#: A true channel whose maximum stays below this holds no structure (the training code's
#: signal threshold): its PCC is undefined and reported as NaN, left out of every mean. The
#: nucleoli of a mitotic cell, dissolved in prophase, are the common case; scoring their
#: absence as PCC 0 would average a model's skill with the biology of the held-out set.
MIN_TRUE_SIGNAL = 0.1


@dataclass
class FOV:
    """One field of view to evaluate."""

    path: Path
    fov: str
    cell_type: str = "unknown"
    split: str = ""
    seed: int | None = None


@dataclass
class PredictionMaps:
    """Inferred fluorescence and optional uncertainty maps (dicts target -> array)."""

    fl: dict[str, np.ndarray]
    uncertainty_data: dict[str, np.ndarray] = field(default_factory=dict)
    uncertainty_model: dict[str, np.ndarray] = field(default_factory=dict)

    def uncertainty(self, target: str) -> np.ndarray | None:
        """Total uncertainty sqrt(data² + model²) of one target, or None if none was made."""
        parts = [d[target] for d in (self.uncertainty_data, self.uncertainty_model)
                 if d and target in d]
        if not parts:
            return None
        return np.sqrt(sum(np.square(p.astype(np.float32)) for p in parts))


#: A predictor maps one paired sample to inferred maps.
Predictor = Callable[[PairedSample], PredictionMaps]


# ---------------------------------------------------------------------------- data


def _fov_name(path: Path) -> str:
    if path.suffix.lower() not in PAIRED_SUFFIXES:
        return path.name
    return path.stem.removesuffix(".ome")  # cell.ome.zarr -> cell


def find_fovs(data: str | Path, split: str | None = None,
              cell_types: Sequence[str] | None = None) -> list[FOV]:
    """List the FOVs of a manifest (CSV) or a folder of paired files.

    Parameters
    ----------
    data : path
        ``manifest.csv`` (columns path, and optionally cell_type, seed, split), a folder
        holding one, or a folder of paired files: paired HDF5 (cell type from each file's
        ``cell_type`` attribute), TCF with ``Data/3DFL`` or OME-Zarr with an ``ri`` channel
        (cell type ``unknown``; give a manifest to group them).
    split : str, optional
        Keep only this split (manifest column ``split``); ignored for plain folders without
        a split attribute.
    cell_types : list of str, optional
        Keep only these cell types.
    """
    data = Path(data)
    if not data.exists():
        raise InputError("no such file or folder", data,
                         "pass a manifest.csv or a folder of paired .h5, .TCF or .zarr files")
    manifest = data / "manifest.csv" if data.is_dir() else data
    if manifest.is_file() and manifest.suffix.lower() == ".csv":
        fovs = _fovs_from_manifest(manifest)
    elif data.is_dir():
        fovs = _fovs_from_folder(data)
    else:
        raise InputError("not a manifest (.csv) or a folder", data)
    if split:
        with_split = [f for f in fovs if f.split]
        if with_split:
            fovs = [f for f in fovs if f.split == split]
    if cell_types:
        known = sorted({f.cell_type for f in fovs})
        unknown = [c for c in cell_types if c not in known]
        if unknown:
            raise ConfigError(f"cell types {unknown} not in the data", "--cell-types",
                              f"the data has {known}")
        fovs = [f for f in fovs if f.cell_type in cell_types]
    if not fovs:
        raise InputError(f"no FOVs to evaluate (split={split!r}, cell types={cell_types})",
                         data, "check --split and --cell-types against the manifest")
    return fovs


def _fovs_from_manifest(manifest: Path) -> list[FOV]:
    try:
        table = pd.read_csv(manifest)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read manifest ({exc})", manifest) from None
    if "path" not in table.columns:
        raise InputError("manifest has no 'path' column", manifest,
                         "expected columns path, cell_type, seed, split")
    fovs = []
    for row in table.itertuples(index=False):
        path = Path(str(row.path))
        if not path.is_absolute():
            path = manifest.parent / path
        if path.suffix.lower() not in PAIRED_SUFFIXES:
            continue  # e.g. time-lapse entries: not paired FOVs
        seed = getattr(row, "seed", None)
        fovs.append(FOV(path=path, fov=_fov_name(path),
                        cell_type=str(getattr(row, "cell_type", "unknown")),
                        split=str(getattr(row, "split", "") or ""),
                        seed=None if seed is None or pd.isna(seed) else int(seed)))
    return fovs


def _fovs_from_folder(folder: Path) -> list[FOV]:
    import h5py

    fovs = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in PAIRED_SUFFIXES):
        if path.suffix.lower() not in (".h5", ".hdf5"):
            fovs.append(FOV(path=path, fov=_fov_name(path), cell_type="unknown", split=""))
            continue
        try:
            with h5py.File(path, "r") as f:
                attrs = {k: f.attrs[k] for k in ("cell_type", "split", "seed") if k in f.attrs}
        except OSError:
            log.warning("skipping %s: not a readable HDF5 file", path)
            continue
        fovs.append(FOV(path=path, fov=_fov_name(path),
                        cell_type=str(_as_str(attrs.get("cell_type", "unknown"))),
                        split=str(_as_str(attrs.get("split", ""))),
                        seed=int(attrs["seed"]) if "seed" in attrs else None))
    return fovs


def _as_str(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------- metrics


def uncertainty_error_spearman(uncertainty: np.ndarray, true: np.ndarray, pred: np.ndarray,
                               mask: np.ndarray | None = None,
                               max_voxels: int = SPEARMAN_MAX_VOXELS, seed: int = 0) -> float:
    """Spearman correlation between voxel uncertainty and absolute error.

    Restricted to ``mask`` (e.g. the cells) when given, on at most ``max_voxels`` voxels drawn
    at random with a fixed seed.
    """
    unc = np.asarray(uncertainty, dtype=np.float32).ravel()
    err = np.abs(np.asarray(true, np.float32) - np.asarray(pred, np.float32)).ravel()
    idx = np.flatnonzero(mask.ravel()) if mask is not None else np.arange(unc.size)
    if idx.size > max_voxels:
        idx = np.random.default_rng(seed).choice(idx, max_voxels, replace=False)
    if idx.size < 3 or np.ptp(unc[idx]) == 0 or np.ptp(err[idx]) == 0:
        return float("nan")
    return float(stats.spearmanr(unc[idx], err[idx]).statistic)


def score_target(true: np.ndarray, pred: np.ndarray, voxel_size_um: Sequence[float],
                 target: str, uncertainty: np.ndarray | None = None,
                 cell_mask: np.ndarray | None = None, structures: bool = True,
                 per_structure: list[dict] | None = None,
                 true_structures: dict[str, Structures] | None = None) -> dict[str, float]:
    """All metrics of one target of one FOV (a metrics.csv row without the identifiers).

    ``per_structure``, when given, receives one :func:`~.structures.structure_records` record
    per true structure (with its ``target``). ``true_structures``, when given, caches the
    structures detected in ``true`` by target, for scoring several predictions of one FOV.
    """
    present = float(np.max(true)) >= MIN_TRUE_SIGNAL
    row: dict[str, float] = {
        "pcc": pcc(true, pred) if present else float("nan"), "ssim": ssim(true, pred),
        "psnr": psnr(true, pred), "mae": mae(true, pred),
    }
    if structures and target in TARGET_KINDS:
        kind = TARGET_KINDS[target]
        cache = {} if true_structures is None else true_structures
        if target not in cache:
            cache[target] = detect_structures(true, voxel_size_um, kind)
        s = match_structures(true, pred, voxel_size_um, kind, true_structures=cache[target])
        row.update({"n_true": s.n_true, "n_pred": s.n_pred,
                    "fraction_matched": s.fraction_matched,
                    "fraction_within_0.5um": s.fraction_within(0.5),
                    "mean_distance_um": s.mean_distance_um, "intensity_r": s.intensity_r})
        if per_structure is not None:
            per_structure += [{"target": target, **r} for r in structure_records(s)]
    if uncertainty is not None:
        inside = cell_mask if cell_mask is not None and cell_mask.any() else None
        row["uncertainty_mean"] = float(np.mean(uncertainty[inside] if inside is not None
                                                else uncertainty))
        row["uncertainty_spearman"] = uncertainty_error_spearman(uncertainty, true, pred,
                                                                 inside)
    return row


def score_fov(sample: PairedSample, maps: PredictionMaps, targets: Sequence[str],
              structures: bool = True, per_structure: list[dict] | None = None,
              true_structures: dict[str, Structures] | None = None) -> list[dict[str, Any]]:
    """Rows (one per target) comparing one FOV's prediction with its true fluorescence.

    ``per_structure``, ``true_structures``: see :func:`score_target`.
    """
    cell_mask = sample.masks.get("membrane")
    rows = []
    for target in targets:
        if target not in sample.fl or target not in maps.fl:
            continue
        true, pred = sample.fl[target], maps.fl[target]
        if true.shape != pred.shape:
            raise InputError(f"prediction of {target!r} has shape {pred.shape}, "
                             f"true fluorescence {true.shape}",
                             hint="the predictor must return maps on the input grid")
        row = {"target": target}
        row.update(score_target(true, pred, sample.voxel_size_um, target,
                                maps.uncertainty(target), cell_mask, structures,
                                per_structure, true_structures))
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- predictors


def _model_targets(model: Any) -> list[str]:
    return list(getattr(model, "targets", TARGETS))


def input_kind(model: Any) -> str:
    """Which input a model takes: "ri", "bf" or "dic" (default "ri")."""
    return str(getattr(model, "input_kind", "ri") or "ri")


def model_input(sample: PairedSample, kind: str) -> np.ndarray:
    """The array a model of input kind ``kind`` is fed from a paired sample."""
    if kind == "ri":
        return sample.ri
    if kind not in sample.extra:
        raise InputError(f"the model needs a {kind!r} stack but the file has none",
                         hint="simulate the data with brightfield/DIC (--modalities ri,fl,bf,dic)")
    return sample.extra[kind]


def _predict_contrast(array: np.ndarray, sample: PairedSample, model: Any, tta: int, mc: int,
                      kind: str, batch_size: int = 2, device: str | None = None,
                      seed: int = 0, patch_size: Sequence[int] | None = None) -> Any:
    """Predict from a brightfield / DIC stack, normalised as the model was trained.

    ``predict_volume`` scales its input as RI; BF and DIC stacks have no absolute scale, so
    they get the training-time percentile normalisation (``ri2fl.data.normalize_input``) and
    go through the shared tiler and ensemble directly. TTA is geometric only (the RI-side
    perturbations do not apply to intensity stacks).
    """
    from ..data.dataset import normalize_input
    from ..infer import (
        ensemble_fn,
        inference_tile,
        make_runner,
        nonnegative,
        predict_tiled,
        prediction_from_stack,
    )
    from ..preprocess import resample, resample_to_shape

    voxel = tuple(float(v) for v in sample.voxel_size_um)
    model_voxel = tuple(getattr(model, "voxel_size_um", voxel))
    grid = resample(array, voxel, model_voxel)  # the input itself on the model's grid
    runner = make_runner(model, device=device)
    fn = ensemble_fn(nonnegative(runner), tta=tta, mc=mc, model=runner.model, perturb=False,
                     seed=seed)
    targets = _model_targets(model)
    k = 1 + (tta > 0) + (mc > 0)
    tile = inference_tile(model, grid.shape, patch_size)
    out = predict_tiled(fn, normalize_input(grid, kind), patch_size=tile,
                        batch_size=batch_size, n_out=k * len(targets))
    out = resample_to_shape(out, array.shape)
    # the same (C, Z, Y, X) -> maps split as predict_volume's
    return prediction_from_stack(out, list(targets), tta, mc, voxel, tile)


def _call_predict_volume(array: np.ndarray, sample: PairedSample, model: Any, tta: int,
                         mc: int, kind: str, **kwargs: Any) -> Any:
    if kind != "ri":
        opts = {k: v for k, v in kwargs.items()
                if k in ("batch_size", "device", "seed", "patch_size")}
        return _predict_contrast(array, sample, model, tta, mc, kind, **opts)
    from ..infer import predict_volume

    params = inspect.signature(predict_volume).parameters
    opts = {k: v for k, v in kwargs.items() if k in params}
    if "medium_index" in params:
        opts["medium_index"] = sample.medium_index
    return predict_volume(array, sample.voxel_size_um, model=model, tta=tta, mc=mc, **opts)


def model_predictor(model: Any, tta: int = 0, mc: int = 0, **kwargs: Any) -> Predictor:
    """A predictor running ``model`` (an object from ``ri2fl.models.load``) on each FOV.

    RI models go through ``ri2fl.infer.predict_volume`` (resampling, RI normalisation with
    the file's medium index, tiling, uncertainty); BF2FL / DIC2FL models
    (``model.input_kind``) get the ``bf`` or ``dic`` stack stored in the paired file. Extra
    keyword arguments (``batch_size``, ``device``, ``seed``...) go to the predictor.
    """
    kind = input_kind(model)

    def predict(sample: PairedSample) -> PredictionMaps:
        array = model_input(sample, kind)
        out = _call_predict_volume(array, sample, model, tta, mc, kind, **kwargs)
        return PredictionMaps(fl=_as_dict(out.fl, model),
                              uncertainty_data=_as_dict(getattr(out, "uncertainty_data", None),
                                                        model),
                              uncertainty_model=_as_dict(getattr(out, "uncertainty_model", None),
                                                         model))

    return predict


def _as_dict(maps: Any, model: Any) -> dict[str, np.ndarray]:
    """Accept dicts target -> array or (C, Z, Y, X) arrays in the model's target order."""
    if maps is None:
        return {}
    if isinstance(maps, Mapping):
        return {k: np.asarray(v) for k, v in maps.items()}
    arr = np.asarray(maps)
    return {t: arr[i] for i, t in enumerate(_model_targets(model))}


# ---------------------------------------------------------------------------- runs


def align_fl_to_ri(sample: PairedSample) -> float:
    """Correct the axial RI/FL misregistration of a paired sample in place.

    The shift is estimated by cross-correlating the RI with the sum of the fluorescence
    channels (``ri2fl.preprocess.estimate_axial_shift``) and applied to every channel.
    Returns the shift in voxels.
    """
    from ..preprocess.register import estimate_axial_shift, shift_axial

    total = np.sum([np.asarray(v, np.float32) for v in sample.fl.values()], axis=0)
    shift = estimate_axial_shift(sample.ri, total, voxel_size_z_um=sample.voxel_size_um[0])
    if shift != 0:
        sample.fl = {k: shift_axial(v, shift).astype(np.float32) for k, v in sample.fl.items()}
    return float(shift)


def evaluate_models(fovs: Sequence[FOV], predictors: Mapping[str, Predictor],
                    targets: Sequence[str] | None = None, structures: bool = True,
                    on_fov: Callable[[str, FOV, PairedSample, PredictionMaps], None]
                    | None = None, desc: str = "evaluate", align_z: bool = False,
                    per_structure: list[dict] | None = None,
                    channel_map: Mapping[str, str] | None = None,
                    fl_scale: float = 1.0) -> pd.DataFrame:
    """Predict and score every FOV with every model; one row per model, FOV and target.

    Each FOV is read once with :func:`ri2fl.io.read_paired_any` (``channel_map``: target ->
    channel name in TCF / OME-Zarr files; ``fl_scale``: raw fluorescence -> the models'
    fixed scale), and the structures of its true fluorescence are detected once, however
    many models are compared on it.

    ``on_fov(model, fov, sample, maps)`` is called after each prediction (e.g. to draw its
    figure) so that nothing but the metrics is kept in memory. With ``align_z`` the true
    fluorescence is first shifted along z onto the RI (:func:`align_fl_to_ri`; column
    ``z_shift_vox``). ``per_structure``, when given, receives one record per model and true
    structure (model, FOV identifiers, target, volume, distance to its match, matched within
    0.5 µm).
    """
    if not predictors:
        raise ConfigError("no model to evaluate", "--model")
    # kept by model, so that the tables list one model after the other as before
    rows: dict[str, list[dict]] = {name: [] for name in predictors}
    records: dict[str, list[dict]] = {name: [] for name in predictors}
    for fov in progress(fovs, desc=desc):
        sample = read_paired_any(fov.path, list(targets or TARGETS), channel_map, fl_scale)
        use = [t for t in (targets or TARGETS) if t in sample.fl]
        ids = {"fov": fov.fov, "cell_type": fov.cell_type, "split": fov.split}
        if align_z and sample.fl:
            ids["z_shift_vox"] = align_fl_to_ri(sample)
        true_structures: dict[str, Structures] = {}
        for name, predictor in predictors.items():
            maps = predictor(sample)
            found: list[dict] = []
            for row in score_fov(sample, maps, use, structures, found, true_structures):
                rows[name].append({"model": name, **ids, **row})
            records[name] += [{"model": name, **ids, **r} for r in found]
            if on_fov is not None:
                on_fov(name, fov, sample, maps)
    if not any(rows.values()):
        raise InputError("no target of the model has true fluorescence in the data",
                         hint=f"the model predicts {list(targets or TARGETS)}")
    if per_structure is not None:
        per_structure += [r for name in predictors for r in records[name]]
    return pd.DataFrame([r for name in predictors for r in rows[name]])


def evaluate_fovs(fovs: Sequence[FOV], predictor: Predictor, targets: Sequence[str] | None = None,
                  structures: bool = True,
                  on_fov: Callable[[FOV, PairedSample, PredictionMaps], None] | None = None,
                  desc: str = "evaluate", align_z: bool = False,
                  per_structure: list[dict] | None = None,
                  channel_map: Mapping[str, str] | None = None,
                  fl_scale: float = 1.0) -> pd.DataFrame:
    """Predict and score every FOV with one model; one row per FOV and target.

    As :func:`evaluate_models` with a single predictor, without the ``model`` column;
    ``on_fov(fov, sample, maps)``.
    """
    found: list[dict] = []
    table = evaluate_models(
        fovs, {"": predictor}, targets, structures,
        on_fov=None if on_fov is None else lambda _, *args: on_fov(*args),
        desc=desc, align_z=align_z, per_structure=found, channel_map=channel_map,
        fl_scale=fl_scale)
    if per_structure is not None:
        per_structure += [{k: v for k, v in r.items() if k != "model"} for r in found]
    return table.drop(columns="model")


def metric_columns(metrics: pd.DataFrame) -> list[str]:
    """The numeric metric columns of a metrics table, in a stable order."""
    order = [*IMAGE_METRICS, *STRUCTURE_METRICS, *UNCERTAINTY_METRICS]
    return [c for c in order if c in metrics.columns]


def summarise(metrics: pd.DataFrame, by: Sequence[str] = ("cell_type", "target")
              ) -> pd.DataFrame:
    """Mean, s.d. and count of every metric by ``by``, plus an "all" cell-type row per target.

    Columns are ``<metric>_mean`` and ``<metric>_sd`` and ``n`` (number of FOVs).
    """
    cols = metric_columns(metrics)
    by = list(by)
    frames = [metrics]
    if "cell_type" in by:
        frames.append(metrics.assign(cell_type="all"))
    data = pd.concat(frames, ignore_index=True)
    # inf PSNR (a perfect prediction) would poison the mean
    values = data[cols].replace([np.inf, -np.inf], np.nan)
    grouped = values.groupby([data[b] for b in by], sort=False)
    mean = grouped.mean().add_suffix("_mean")
    sd = grouped.std(ddof=1).add_suffix("_sd")
    n = data.groupby(by, sort=False).size().rename("n")
    out = pd.concat([n, mean, sd], axis=1)
    ordered = ["n"] + [f"{c}_{s}" for c in cols for s in ("mean", "sd")]
    return out[ordered].reset_index()


def t_tests(metrics: pd.DataFrame, reference: str, metric_names: Sequence[str] = ("pcc", "ssim",
                                                                                     "psnr"),
            by: str = "target") -> pd.DataFrame:
    """Unpaired two-sided t-tests of ``reference`` against every other model, per ``by``.

    ``metrics`` needs a ``model`` column. Each row: by, metric, model, reference mean,
    other mean, t, p (scipy.stats.ttest_ind, equal variances as in the paper), n of each,
    and whether the reference is better with p < 0.01.
    """
    if "model" not in metrics.columns:
        raise ConfigError("the metrics table has no 'model' column")
    others = [m for m in metrics["model"].unique() if m != reference]
    rows = []
    for key, group in metrics.groupby(by, sort=False):
        ref = group[group["model"] == reference]
        for other in others:
            oth = group[group["model"] == other]
            for metric in metric_names:
                a = ref[metric].replace([np.inf, -np.inf], np.nan).dropna().to_numpy()
                b = oth[metric].replace([np.inf, -np.inf], np.nan).dropna().to_numpy()
                if len(a) < 2 or len(b) < 2:
                    t, p = float("nan"), float("nan")
                else:
                    res = stats.ttest_ind(a, b)
                    t, p = float(res.statistic), float(res.pvalue)
                better = (metric != "mae") == (np.mean(a) > np.mean(b)) if len(a) and len(b) \
                    else False
                rows.append({by: key, "metric": metric, "model": other,
                             f"{reference}_mean": float(np.mean(a)) if len(a) else np.nan,
                             "other_mean": float(np.mean(b)) if len(b) else np.nan,
                             "t": t, "p": p, f"n_{reference}": len(a), "n_other": len(b),
                             "reference_better_p<0.01": bool(better and p < 0.01)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- outputs


@dataclass
class EvaluationResult:
    """Tables and files written by :func:`run_evaluation`."""

    metrics: pd.DataFrame
    summary: pd.DataFrame
    tests: pd.DataFrame | None
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    #: one row per model, FOV and true structure (``structures.csv``); empty without any.
    structures: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: fraction matched within 0.5 µm pooled over FOVs per model and target, with its
    #: confidence interval (``structures_summary.csv``); None without any structure.
    structure_summary: pd.DataFrame | None = None
    #: with several models: each one's fraction matched within 0.5 µm minus the first's,
    #: paired over FOVs, with its interval (``structures_differences.csv``).
    structure_differences: pd.DataFrame | None = None


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    from ..io import write_table

    # a rerun into the same folder replaces its tables (ri2fl's own: same header), nothing else
    return write_table(table, path, overwrite=True, float_format="%.6g")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


def run_evaluation(predictors: Mapping[str, Predictor], data: str | Path, out_dir: str | Path,
                   split: str | None = "test", cell_types: Sequence[str] | None = None,
                   targets: Sequence[str] | None = None, n_panels: int = 2,
                   structures: bool = True, input_kinds: Mapping[str, str] | None = None,
                   title: str = "ri2fl evaluation", align_z: bool = False,
                   channel_map: Mapping[str, str] | None = None,
                   fl_scale: float = 1.0) -> EvaluationResult:
    """Evaluate one or several models on the same FOVs and write the tables, figures, report.

    Parameters
    ----------
    predictors : mapping name -> predictor
        With more than one, the first is the reference of the t-tests (e.g. RI2FL against
        BF2FL and DIC2FL).
    data : path
        Manifest or folder (see :func:`find_fovs`).
    out_dir : path
        Receives ``metrics.csv`` (one row per model, FOV and target), ``summary.csv``
        (mean ± s.d. by model, cell type and target), ``ttests.csv`` (several models),
        ``structures.csv`` (one row per model, FOV and true structure: volume, distance to its
        match), ``structures_summary.csv`` (fraction matched within 0.5 µm pooled over FOVs,
        per model and target, with its 95 % confidence interval) and
        ``structures_by_size.csv`` (the same per volume class), ``structures_misses.csv`` (why
        the others were missed: :func:`~.structures.misses_by_cause`), with several models
        ``structures_differences.csv`` (each model's fraction matched within 0.5 µm minus the
        first's, paired bootstrap interval over FOVs), ``figures/*.png`` and ``report.html``.
    n_panels : int
        Max-projection panels drawn per model: the first FOV of each cell type, up to
        ``n_panels``.
    align_z : bool
        Shift the true fluorescence along z onto the RI first (RI/FL misregistration).
    channel_map, fl_scale
        How TCF / OME-Zarr fluorescence channels map to targets, and the raw fluorescence
        value that maps to 1 on the models' scale (see :func:`evaluate_models`).
    """
    from .figures import metric_boxplots, panel_figure
    from .html import image_tag, table_html, write_report

    if not predictors:
        raise ConfigError("no model to evaluate", "--model")
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    fovs = find_fovs(data, split, cell_types)
    files: dict[str, Path] = {}
    panels: list[Path] = []
    records: list[dict] = []
    drawn: dict[str, set[str]] = {name: set() for name in predictors}

    def draw(name: str, fov: FOV, sample: PairedSample, maps: PredictionMaps) -> None:
        # one panel per model and cell type, the first FOV of each, up to n_panels
        if len(drawn[name]) >= n_panels or fov.cell_type in drawn[name]:
            return
        drawn[name].add(fov.cell_type)
        kind = (input_kinds or {}).get(name, "ri")
        shown = [t for t in (targets or TARGETS) if t in maps.fl and t in sample.fl]
        panels.append(panel_figure(
            model_input(sample, kind), {t: sample.fl[t] for t in shown},
            {t: maps.fl[t] for t in shown}, {t: maps.uncertainty(t) for t in shown},
            fig_dir / f"panel_{_safe(name)}_{_safe(fov.fov)}.png",
            title=f"{name}: {fov.fov} ({fov.cell_type})", input_name=kind.upper()))

    metrics = evaluate_models(fovs, predictors, targets, structures, on_fov=draw,
                              align_z=align_z, per_structure=records,
                              channel_map=channel_map, fl_scale=fl_scale)
    summary = summarise(metrics, by=("model", "cell_type", "target"))
    files["metrics"] = _write_csv(metrics, out_dir / "metrics.csv")
    files["summary"] = _write_csv(summary, out_dir / "summary.csv")
    per_structure = pd.DataFrame(records)
    by_size = pooled = misses = None
    if len(per_structure):
        pooled = structure_summary(metrics)
        files["structures_summary"] = _write_csv(pooled, out_dir / "structures_summary.csv")
        files["structures"] = _write_csv(per_structure, out_dir / "structures.csv")
        by_size = matched_by_size(per_structure, by=("model", "target"))
        files["structures_by_size"] = _write_csv(by_size, out_dir / "structures_by_size.csv")
        misses = misses_by_cause(per_structure, by=("model", "target"))
        files["structures_misses"] = _write_csv(misses, out_dir / "structures_misses.csv")
    tests = differences = None
    names = list(predictors)
    sections: list[tuple[str, list[str]]] = []
    if len(names) > 1:
        tests = t_tests(metrics, reference=names[0])
        compared = [table_html(tests, digits=4)]
        if pooled is not None:
            differences = structure_differences(metrics, reference=names[0])
            files["structures_differences"] = _write_csv(
                differences, out_dir / "structures_differences.csv")
            compared += [
                f"<p>Structures matched within 0.5 µm: each model minus {names[0]}, pooled "
                "over FOVs, with a paired bootstrap 95 % interval over FOVs.</p>",
                table_html(differences)]
        files["ttests"] = _write_csv(tests, out_dir / "ttests.csv")
        files["comparison"] = metric_boxplots(metrics, fig_dir / "comparison_by_model.png",
                                              group="model")
        overall = summarise(metrics, by=("model", "target"))
        sections.append((f"{names[0]} against {', '.join(names[1:])}", [
            "<p>Mean ± s.d. over all FOVs; unpaired two-sided t-tests (scipy.stats.ttest_ind)"
            f" of {names[0]} against each other model, per target.</p>",
            table_html(overall[["model", "target", "n", "pcc_mean", "pcc_sd", "ssim_mean",
                                "ssim_sd", "psnr_mean", "psnr_sd"]]),
            *compared, image_tag(files["comparison"], "comparison")]))
    for name in names:
        sub = metrics[metrics["model"] == name]
        box = metric_boxplots(sub, fig_dir / f"boxplots_{_safe(name)}.png", group="cell_type")
        files[f"boxplots_{name}"] = box
        summ = summary[summary["model"] == name].drop(columns="model")
        keep = ["cell_type", "target", "n"] + [c for c in summ.columns
                                               if c.split("_")[0] in ("pcc", "ssim", "psnr")]
        frags = [table_html(summ[keep]), image_tag(box, f"{name} box plots")]
        struct = [c for c in summ.columns if c.startswith(("fraction_", "mean_distance",
                                                           "intensity_r", "uncertainty_"))]
        if struct:
            rows = summ[summ["cell_type"] == "all"]
            frags.insert(1, table_html(rows[["target", *struct]]))
        sections.append((f"{name}: metrics by cell type and target", frags))
    if by_size is not None:
        sections.append(("Structures matched within 0.5 µm", [
            "<p>Structures detected in the true fluorescence and the fraction of them matched "
            "by a structure of the prediction within 0.5 µm, pooled over FOVs, with its 95 % "
            "confidence interval (bootstrap over FOVs: the structures of one FOV are not "
            "independent).</p>",
            table_html(pooled),
            "<p>By volume class (µm³) in the truth:</p>",
            table_html(by_size),
            "<p>Why the others were missed (fractions of the true structures): no predicted "
            "structure overlaps them, the prediction joined them with another true structure, "
            "or a predicted structure of their own lies too far off:</p>",
            table_html(misses)]))
    sections.append(("Max projections: input | true | inferred | uncertainty",
                     [image_tag(p, p.stem) for p in panels]))
    files["report"] = write_report(
        out_dir / "report.html", title, sections,
        note=f"{len(fovs)} FOVs from {data} (split {split or 'all'}); metrics on the fixed "
             "fluorescence scale: PSNR = 10 log10(1/MSE), SSIM with a 7-voxel Gaussian window.",
        overwrite=True)
    return EvaluationResult(metrics, summary, tests, out_dir, files, per_structure, pooled,
                            differences)
