#!/usr/bin/env python
"""Score a model and the shipped segmentation on the out-of-domain sets of issue #30.

For each simulated part of the config (``physical``, ``textbook``; built by
``scripts/make_ood_sets.py`` into ``DATA/<part>/``) it runs what ``ri2fl evaluate --data
DATA/<part>/manifest.csv --split test`` runs (fluorescence PCC per target) and what
``ri2fl evaluate --segmentation`` runs (Dice per organelle and cell counts of the shipped
``segment-default`` / ``cell-default`` and the watershed route), into ``OUT/<part>/``; then
the HL60 checks (:func:`ri2fl.evaluate.ood.hl60_checks`) on the bundled real cell, both
segmentation routes, with the model's inferred nucleus fluorescence. Writes
``OUT/ood_table.csv`` (one row per model, metric and part: value, goal, pass) and
``OUT/ood_table.md`` (the same, parts side by side), and prints the Markdown.

With ``--uncertainty`` it instead asks whether the uncertainty maps say when not to trust
(issue #30, item 5): it predicts with uncertainty (``--tta``, ``--mc``) on the parts and on the
in-domain reference (``DATA/in_domain/``, ``make_ood_sets.py --in-domain``: the physical
part's cells through the default fast tomograph) and writes ``OUT/uncertainty.csv`` (per part
and target: mean uncertainty inside the cells, its ratio to the in-domain reference's, mean
absolute error there, the uncertainty-error Spearman over voxels inside the cells, pooled over
the part's fields, and the fraction of fields whose prediction warned that it is
off-domain), ``OUT/uncertainty_fields.csv`` (the same per field) and ``OUT/uncertainty.md``.
The HL60 cell has no fluorescence truth: only its mean uncertainty is reported.

Example (about 2.5 minutes on 2 CPU cores; the uncertainty study about 5)::

    python scripts/make_ood_sets.py configs/ood_eval.yaml ood/ --in-domain
    python scripts/eval_ood.py configs/ood_eval.yaml ood/ ood_eval/ --model default
    python scripts/eval_ood.py configs/ood_eval.yaml ood/ ood_eval/ --uncertainty --tta 2 --mc 4
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ri2fl.constants import TARGETS
from ri2fl.errors import InputError
from ri2fl.evaluate.ood import (
    HL60_GOALS,
    IN_DOMAIN,
    SIMULATED_PARTS,
    UNCERTAINTY_VOXELS,
    FieldUncertainty,
    field_uncertainty,
    hl60_checks,
    hl60_reference,
    read_ood_config,
    uncertainty_table,
)

#: Which shipped model each segmentation metric judges.
SEG_MODEL = "segment-default"
CELL_MODEL = "cell-default"
WATERSHED = "watershed route (FL of --model)"
#: The physical part's fields through the fast path (``make_ood_sets.py --fast-control``).
CONTROL = "physical_fast"
#: Column headers of the parts in the Markdown table.
HEADERS = {"physical": "(a) physical tomograph", "textbook": "(b) textbook cells",
           "hl60": "(c) HL60", CONTROL: "control: (a)'s cells, fast path",
           IN_DOMAIN: "in-domain (fast path)"}


def _row(model: str, metric: str, part: str, value: float, goal: float | None = None,
         op: str = ">=", n: int = 0, note: str = "") -> dict[str, Any]:
    """One row of the table; ``pass`` is None without a goal or a value."""
    ok = None
    if goal is not None and value is not None and not math.isnan(value):
        ok = bool(value >= goal) if op == ">=" else bool(value == goal)
    return {"model": model, "metric": metric, "part": part, "value": value,
            "goal": "" if goal is None else f"{op} {goal:g}", "pass": ok, "n": n,
            "note": note}


def fluorescence_rows(metrics: pd.DataFrame, part: str, model: str,
                      goals: Mapping[str, float]) -> list[dict[str, Any]]:
    """Mean PCC per target over the part's fields, and the mean of the six, with goals."""
    rows, means = [], {}
    for target in TARGETS:
        values = metrics.loc[metrics["target"] == target, "pcc"].dropna()
        if not len(values):
            continue
        means[target] = float(values.mean())
        rows.append(_row(model, f"PCC {target}", part, means[target], goals.get(target),
                         n=len(values)))
    note = "" if len(means) == len(TARGETS) else f"mean of the {len(means)} targets present"
    mean = float(np.mean(list(means.values()))) if means else float("nan")
    rows.append(_row(model, "PCC mean of six", part, mean,
                     goals.get("mean_of_six") if not note else None,
                     n=metrics["fov"].nunique(), note=note))
    return rows


def segmentation_rows(table: pd.DataFrame, part: str, goals: Mapping[str, Any],
                      organelle_model: str = SEG_MODEL, cell_model: str = CELL_MODEL
                      ) -> list[dict[str, Any]]:
    """Mean Dice per organelle (network route) and the fraction of fields counted exactly."""
    seg, counts = goals["segmentation"], goals["exact_cell_counts"]
    rows = []
    for organelle, label in (("nucleus", "nucleus"), ("membrane", "whole cell"),
                             ("nucleolus", "nucleolus"), ("lipid_droplets", "lipid droplets")):
        values = table[f"dice_{organelle}"].dropna()
        rows.append(_row(organelle_model, f"Dice {label}", part, float(values.mean()),
                         seg.get(organelle), n=len(values)))
    rows.append(_row(cell_model, "cell F1 (IoU 0.5)", part, float(table["f1_network"].mean()),
                     n=len(table)))
    small = table[table["n_cells"] <= int(counts["max_cells"])]
    for route, model in (("network", cell_model), ("watershed_fl", WATERSHED)):
        column = f"cells_{route}"
        if column not in small or not len(small):
            continue
        exact = small[column] == small["n_cells"]
        wrong = ", ".join(f"{t}->{p}" for t, p in zip(small.loc[~exact, "n_cells"],
                                                      small.loc[~exact, column]))
        rows.append(_row(model, f"exact cell counts (<= {counts['max_cells']} cells)", part,
                         float(exact.mean()), float(counts["fraction"]), n=len(small),
                         note=f"{int(exact.sum())}/{len(small)} fields"
                              + (f"; true->found {wrong}" if wrong else "")))
    return rows


def hl60_rows(model: str, path: str | Path, goals: Mapping[str, Any] | None = None,
              routes: Sequence[str] = ("network", "watershed"),
              organelle_model: str = "segment-default", cell_model: str = "cell-default"
              ) -> list[dict[str, Any]]:
    """The HL60 checks of each segmentation route, with ``model``'s nucleus fluorescence."""
    from ri2fl.infer import predict_volume
    from ri2fl.io import read
    from ri2fl.segment import segment_volume

    vol = read(path)
    ri = np.asarray(vol.data, np.float32)
    voxel, medium = tuple(vol.voxel_size_um), float(vol.medium_index)
    fl = predict_volume(ri, voxel, model=model, medium_index=medium, progress=False,
                        targets=["nucleus", "membrane"]).fl
    nets = {"model": organelle_model, "cell_model": cell_model}
    net = segment_volume(ri, voxel, medium, method="network", return_probabilities=True,
                         **nets)
    segs = {"network": net}
    if "watershed" in routes:
        segs["watershed"] = segment_volume(ri, voxel, medium, method="watershed",
                                           fl={"nucleus": fl["nucleus"],
                                               "membrane": fl["membrane"]},
                                           probabilities=net.probabilities, **nets)
    rows = []
    for route, seg in segs.items():
        for check in hl60_checks(ri, voxel, medium, seg.cell_labels, seg.nucleus_labels,
                                 fl["nucleus"] if route == "network" else None, goals):
            if check["check"].startswith("nucleus FL"):
                owner = model
            elif route == "watershed":
                owner = WATERSHED
            else:
                owner = cell_model if check["check"].startswith("cell") else organelle_model
            name = check["check"] if owner == model else f"{check['check']} ({route})"
            rows.append({"model": owner, "metric": f"HL60 {name}",
                         "part": "hl60", "value": check["value"], "goal": check["goal"],
                         "pass": check["pass"], "n": 1, "note": ""})
    return rows


def _cell(value: float, ok: bool | None) -> str:
    text = "—" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.4f}" if abs(value) < 0.01 else f"{value:.3f}"
    return text if ok is None else f"{text} ({'pass' if ok else 'FAIL'})"


def markdown(table: pd.DataFrame, parts: Sequence[str]) -> str:
    """The table with the parts side by side: model | metric | goal | one column per part."""
    head = ["model", "metric", "goal", *(HEADERS.get(q, q) for q in parts)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (model, metric), sub in table.groupby(["model", "metric"], sort=False):
        goal = next((g for g in sub["goal"] if g), "")
        cells = []
        for part in parts:
            hit = sub[sub["part"] == part]
            if not len(hit):
                cells.append("")
                continue
            r = hit.iloc[0]
            cells.append(_cell(r["value"], r["pass"]) + (f" [{r['note']}]" if r["note"] else ""))
        lines.append("| " + " | ".join([model, metric, goal, *cells]) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- uncertainty


def predict_noting_domain(predict: Callable[..., Any], *args: Any,
                          **kwargs: Any) -> tuple[Any, bool]:
    """``predict(*args, **kwargs)`` and whether it warned that its input is off-domain
    (:class:`ri2fl.preprocess.domain.OffDomainWarning`); other warnings pass on."""
    from ri2fl.preprocess.domain import OffDomainWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = predict(*args, **kwargs)
    warned = False
    for w in caught:
        if issubclass(w.category, OffDomainWarning):
            warned = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out, warned


def maps_uncertainty(part: str, fov: str, maps: Any, cell: np.ndarray,
                     truth: Mapping[str, np.ndarray], warned: bool,
                     max_voxels: int = UNCERTAINTY_VOXELS) -> list[FieldUncertainty]:
    """:func:`field_uncertainty` of every target of one prediction (``PredictionMaps``)."""
    out = []
    for i, target in enumerate(maps.fl):
        true = truth.get(target)
        out.append(field_uncertainty(
            part, fov, target, maps.uncertainty(target), cell, true,
            maps.fl[target] if true is not None else None,
            {"data": maps.uncertainty_data.get(target),
             "model": maps.uncertainty_model.get(target)},
            max_voxels, seed=i, warned=warned))
    return out


def part_uncertainty(part: str, manifest: Path, predict: Callable[..., Any],
                     max_voxels: int = UNCERTAINTY_VOXELS) -> list[FieldUncertainty]:
    """Predict every test field of a simulated part; its uncertainty inside the true cells."""
    from ri2fl.evaluate.runner import find_fovs
    from ri2fl.io.paired import read_paired_any

    if not manifest.is_file():
        hint = ("python scripts/make_ood_sets.py CONFIG DATA --in-domain" if part == IN_DOMAIN
                else "python scripts/make_ood_sets.py CONFIG DATA")
        raise InputError(f"no manifest for part {part!r}", manifest, hint)
    out = []
    for fov in find_fovs(manifest, split="test"):
        sample = read_paired_any(fov.path, list(TARGETS))
        maps, warned = predict_noting_domain(predict, sample)
        cell = sample.masks.get("membrane", np.zeros(sample.ri.shape, bool))
        out += maps_uncertainty(part, fov.fov, maps, cell, sample.fl, warned, max_voxels)
    return out


def hl60_uncertainty(model: Any, path: str | Path, tta: int, mc: int,
                     batch_size: int = 2) -> list[FieldUncertainty]:
    """The bundled HL60 cell's mean uncertainty inside the cell its RI outlines (no truth)."""
    from ri2fl.evaluate.runner import PredictionMaps
    from ri2fl.infer import predict_volume
    from ri2fl.io import read

    vol = read(path)
    ri = np.asarray(vol.data, np.float32)
    voxel, medium = tuple(vol.voxel_size_um), float(vol.medium_index)
    pred, warned = predict_noting_domain(predict_volume, ri, voxel, model=model, tta=tta,
                                         mc=mc, medium_index=medium, batch_size=batch_size,
                                         progress=False)
    maps = PredictionMaps(dict(pred.fl), dict(pred.uncertainty_data),
                          dict(pred.uncertainty_model))
    cell = hl60_reference(ri, voxel, medium)["cell"]
    return maps_uncertainty("hl60", "hl60", maps, cell, {}, warned)


def _number(value: float, digits: int = 4) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _pivot(table: pd.DataFrame, parts: Sequence[str],
           cell: Callable[[pd.Series], str]) -> list[str]:
    """Markdown rows: one per target, one column per part."""
    lines = ["| target | " + " | ".join(HEADERS.get(q, q) for q in parts) + " |",
             "|" + "---|" * (len(parts) + 1)]
    for target in dict.fromkeys(table["target"]):
        cells = []
        for part in parts:
            hit = table[(table["part"] == part) & (table["target"] == target)]
            cells.append(cell(hit.iloc[0]) if len(hit) else "")
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    return lines


def uncertainty_markdown(table: pd.DataFrame, parts: Sequence[str], tta: int, mc: int) -> str:
    """The three tables of the uncertainty study: mean uncertainty against in-domain,
    uncertainty-error Spearman, mean absolute error (targets down, parts across)."""
    parts = [q for q in parts if q in set(table["part"])]
    with_truth = [q for q in parts if table.loc[table["part"] == q, "error_mean"].notna().any()]
    warned = {q: table.loc[table["part"] == q, "fraction_warned"].iloc[0] for q in parts}

    def mean(r: pd.Series) -> str:
        ratio = "" if r["part"] == IN_DOMAIN or math.isnan(r["ratio_to_reference"]) \
            else f" (×{r['ratio_to_reference']:.2f})"
        return _number(r["uncertainty_mean"]) + ratio

    def rho(r: pd.Series) -> str:
        return (f"{_number(r['spearman'], 2)} (fields {_number(r['spearman_fields_mean'], 2)})"
                if not math.isnan(r["spearman"]) else "—")

    lines = [f"Uncertainty with `--tta {tta} --mc {mc}`: total s.d. sqrt(data² + model²), "
             "inside the cells (true cell masks; HL60: the cell its RI outlines).", "",
             "Mean uncertainty inside cells (× the in-domain reference's):", "",
             *_pivot(table, parts, mean),
             "| fields warned off-domain | " + " | ".join(_number(warned[q], 2) for q in parts)
             + " |", "",
             "Spearman of uncertainty against absolute error, voxels inside cells pooled over "
             "the part's fields (the mean of the fields' own in brackets):", "",
             *_pivot(table, with_truth, rho), "",
             "Mean absolute error inside cells:", "",
             *_pivot(table, with_truth, lambda r: _number(r["error_mean"]))]
    return "\n".join(lines) + "\n"


def run_uncertainty(args: argparse.Namespace, config: Mapping[str, Any]) -> int:
    """The uncertainty study (``--uncertainty``): writes and prints its tables."""
    from ri2fl.evaluate.runner import model_predictor
    from ri2fl.models import load

    if not (args.tta or args.mc):
        raise InputError("the uncertainty study needs uncertainty maps", "--tta/--mc",
                         "use e.g. --tta 2 --mc 4")
    model = load(args.model)
    predict = model_predictor(model, tta=args.tta, mc=args.mc, batch_size=args.batch_size,
                              progress=False)
    parts = [IN_DOMAIN, *(q for q in (*SIMULATED_PARTS, CONTROL, "hl60") if q in args.parts)]
    fields: list[FieldUncertainty] = []
    for part in parts:
        if part == "hl60":
            import ri2fl

            path = Path(ri2fl.__file__).parent / config["parts"]["hl60"]["package_file"]
            fields += hl60_uncertainty(model, path, args.tta, args.mc, args.batch_size)
        else:
            fields += part_uncertainty(part, args.data / part / "manifest.csv", predict,
                                       args.voxels)
        table = uncertainty_table(fields, reference=IN_DOMAIN)
        table.to_csv(args.out / "uncertainty.csv", index=False, float_format="%.5g")
        pd.DataFrame([f.record() for f in fields]).to_csv(
            args.out / "uncertainty_fields.csv", index=False, float_format="%.5g")
        text = (f"Uncertainty off-domain ({config['name']}, fixed {config['fixed']}); model "
                f"`{args.model}`\n\n" + uncertainty_markdown(table, parts, args.tta, args.mc))
        (args.out / "uncertainty.md").write_text(text, encoding="utf-8")
        print(f"{part}: {len({f.fov for f in fields if f.part == part})} fields", flush=True)
    print((args.out / "uncertainty.md").read_text(encoding="utf-8"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", type=Path, help="configs/ood_eval.yaml")
    p.add_argument("data", type=Path, help="the folder make_ood_sets.py wrote")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--model", default="default", help="fluorescence model (default: default)")
    p.add_argument("--organelle-model", default="segment-default",
                   help="organelle network, a shipped name or a checkpoint "
                        "(default: segment-default)")
    p.add_argument("--cell-model", default="cell-default",
                   help="cell network (default: cell-default)")
    p.add_argument("--parts", nargs="+", default=[*SIMULATED_PARTS, "hl60"],
                   choices=[*SIMULATED_PARTS, "hl60", CONTROL],
                   help=f"only these parts; {CONTROL}: make_ood_sets.py --fast-control's "
                        "fields (a control, not part of the set)")
    p.add_argument("--structures", action="store_true",
                   help="also match droplets, nucleoli, mitochondria (slower)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--uncertainty", action="store_true",
                   help=f"instead: the uncertainty study (needs DATA/{IN_DOMAIN}/, "
                        "make_ood_sets.py --in-domain)")
    p.add_argument("--tta", type=int, default=2,
                   help="with --uncertainty: test-time augmentation passes (default 2)")
    p.add_argument("--mc", type=int, default=4,
                   help="with --uncertainty: MC-dropout passes (default 4)")
    p.add_argument("--voxels", type=int, default=UNCERTAINTY_VOXELS,
                   help="with --uncertainty: voxels inside cells drawn per field and target "
                        f"for the Spearman correlation (default {UNCERTAINTY_VOXELS})")
    args = p.parse_args(argv)
    config = read_ood_config(args.config)
    goals = config["goals"]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.uncertainty:
        return run_uncertainty(args, config)
    rows: list[dict[str, Any]] = []

    def write() -> None:  # after every part, so that a long run leaves its tables
        table = pd.DataFrame(rows)
        table.to_csv(args.out / "ood_table.csv", index=False, float_format="%.4f")
        text = (f"Out-of-domain evaluation ({config['name']}, fixed {config['fixed']}); "
                f"fluorescence model `{args.model}`\n\n"
                + markdown(table, order))
        (args.out / "ood_table.md").write_text(text, encoding="utf-8")

    order = [q for q in (*SIMULATED_PARTS, "hl60", CONTROL) if q in args.parts]
    for part in (q for q in order if q != "hl60"):
        from ri2fl.evaluate.runner import model_predictor, run_evaluation
        from ri2fl.evaluate.segmentation import evaluate_segmentation
        from ri2fl.models import load

        manifest = args.data / part / "manifest.csv"
        predictor = model_predictor(load(args.model), batch_size=args.batch_size,
                                    progress=False)
        result = run_evaluation({args.model: predictor}, manifest, args.out / part / "fl",
                                split="test", structures=args.structures, n_panels=1,
                                title=f"ri2fl out-of-domain evaluation: {part}")
        rows += fluorescence_rows(result.metrics, part, args.model, goals["fluorescence"])
        evaluate_segmentation(manifest, args.out / part / "segmentation", split="test",
                              organelle_model=args.organelle_model, cell_model=args.cell_model,
                              fl_model=args.model)
        seg = pd.read_csv(args.out / part / "segmentation" / "segmentation.csv")
        rows += segmentation_rows(seg, part, goals, args.organelle_model, args.cell_model)
        write()
    if "hl60" in args.parts:
        import ri2fl

        hl60 = config["parts"]["hl60"]
        rows += hl60_rows(args.model, Path(ri2fl.__file__).parent / hl60["package_file"],
                          {**HL60_GOALS, **goals.get("hl60", {})},
                          hl60.get("routes", ("network", "watershed")),
                          args.organelle_model, args.cell_model)
        write()
    print((args.out / "ood_table.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
