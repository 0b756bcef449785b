#!/usr/bin/env python
"""Adapt the shipped model to a "lab microscope" with 1, 2, 4, 8 paired volumes: PCC per target.

Issue #30, item 6. A lab that images with its own instrument fine-tunes the shipped model on a
few paired RI / fluorescence volumes of its own. This script measures what that buys, and
what it costs on a CPU:

1. It simulates the lab's data: cells (``--cell-type``, default HEK 293) measured by the
   physical beam-propagation tomograph (:func:`ri2fl.evaluate.ood.measure_physical`) with one
   fixed instrument outside the training ranges (:data:`LAB_OPTICS`: a dry 0.6 NA objective,
   below the 0.7-1.4 NA the shipped models saw). ``--n-train`` (8) training fields from seed
   950000 and ``--n-test`` (4) test fields from seed 960000, into ``OUT/lab/``. These are no
   part of the fixed out-of-domain sets (``configs/ood_eval.yaml``, which no training may
   read); their seeds are checked against those, training's and the experiments'.
2. For each n of ``--sizes`` (1 2 4 8) it writes ``OUT/lab/manifest_n<n>.csv`` (the first n
   training fields, each listed as split ``train`` and as split ``val``: with one volume
   there is nothing to hold out) and runs the real command a user runs::

       ri2fl train configs/finetune_microscope.yaml --finetune default \\
           --data OUT/lab/manifest_n<n>.csv --out OUT/finetune_n<n> --max-minutes M

   as a subprocess, timing its wall-clock and CPU minutes (user + system time of the child).
   A run whose ``OUT/finetune_n<n>/timing.json`` exists is kept (rerun the script to go on).
3. It scores the shipped model (n = 0) and each ``OUT/finetune_n<n>/best.pt`` on the test
   fields (one deterministic pass each; :func:`ri2fl.evaluate.runner.evaluate_models`) and
   writes ``OUT/metrics.csv`` (per model, field and target), ``OUT/adaptation.csv`` and
   ``OUT/adaptation.md`` (per n: minutes, PCC per target, mean of the six), and prints the
   Markdown.

Example (about 55 minutes on 2 CPU cores with the defaults: 3 to simulate, 4 x 11 to train,
5 to score)::

    python scripts/adaptation_curve.py adapt/ --minutes 10 --threads 2 --bf16
    python scripts/adaptation_curve.py adapt/ --plan     # the fields and commands, nothing run
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ri2fl.constants import TARGETS
from ri2fl.errors import ConfigError
from ri2fl.evaluate.ood import (
    optics_outside_training,
    read_ood_config,
    seed_conflicts,
    write_physical_set,
)
from ri2fl.simulate.sets import FieldSpec, write_manifest_rows

REPO = Path(__file__).resolve().parents[1]
#: The lab's instrument: a 532 nm laser behind a dry 0.6 NA objective (below the training
#: NA range, 0.7-1.4), 24 beams on a ring at 0.5 NA. Neither of the fixed sets' optics.
LAB_OPTICS: dict[str, Any] = {"name": "lab_dry_objective", "wavelength_um": 0.532, "na": 0.6,
                              "na_ill": 0.5, "n_illuminations": 24}
TRAIN_SEED = 950_000
TEST_SEED = 960_000
SIZES = (1, 2, 4, 8)
CONFIG = REPO / "configs" / "finetune_microscope.yaml"
OOD_CONFIG = REPO / "configs" / "ood_eval.yaml"
#: The n = 0 row: the shipped model, not fine-tuned.
SHIPPED = 0


class LabPlan(NamedTuple):
    """The lab microscope's fields and the fine-tuning runs of one adaptation curve."""

    fields: list[tuple[FieldSpec, dict[str, Any]]]
    sizes: tuple[int, ...]
    out: Path

    @property
    def data(self) -> Path:
        return self.out / "lab"

    def train_files(self) -> list[str]:
        return [s.file for s, _ in self.fields if s.split == "train"]

    def run_dir(self, n: int) -> Path:
        return self.out / f"finetune_n{n}"

    def manifest(self, n: int) -> Path:
        return self.data / f"manifest_n{n}.csv"


def plan_lab(out: str | Path, n_train: int = 8, n_test: int = 4,
             sizes: Sequence[int] = SIZES, cell_type: str = "hek293", n_cells: int | None = 3,
             shape: Sequence[int] = (32, 192, 192),
             optics: Mapping[str, Any] = LAB_OPTICS,
             ood_config: str | Path = OOD_CONFIG) -> LabPlan:
    """The fields of the lab microscope (train from :data:`TRAIN_SEED`, test from
    :data:`TEST_SEED`) and the sizes of the curve.

    Raises
    ------
    ConfigError
        Sizes above ``n_train``; seeds that meet training, the experiments, the fixed
        out-of-domain sets or the in-domain reference; optics inside the training ranges.
    """
    if not sizes or min(sizes) < 1 or max(sizes) > n_train:
        raise ConfigError(f"sizes {list(sizes)} must lie in 1..{n_train} (--n-train)",
                          "--sizes")
    if not optics_outside_training(optics):
        raise ConfigError("the lab's optics lie inside the training ranges", "optics",
                          "move a knob outside ri2fl.simulate.domain's ranges")
    specs = [FieldSpec(cell_type, split, seed + i, tuple(int(v) for v in shape),
                       n_cells=n_cells, physics="none")
             for split, seed, n in (("train", TRAIN_SEED, n_train), ("test", TEST_SEED, n_test))
             for i in range(n)]
    clashes = seed_conflicts([s.seed for s in specs], read_ood_config(ood_config))
    if clashes:
        raise ConfigError(f"the lab microscope's fields use {', '.join(clashes)}", "seed")
    return LabPlan([(s, dict(optics)) for s in specs], tuple(sorted(set(sizes))), Path(out))


def write_lab_data(plan: LabPlan, workers: int = 1, noise_std: float = 6e-4) -> Path:
    """Simulate the lab's fields into ``plan.data`` (kept when every file is there)."""
    manifest = plan.data / "manifest.csv"
    if manifest.is_file() and all((plan.data / s.file).is_file() for s, _ in plan.fields):
        return manifest
    return write_physical_set(plan.data, plan.fields, noise_std, workers,
                              set_name="lab_microscope")


def write_size_manifest(plan: LabPlan, n: int) -> Path:
    """``manifest_n<n>.csv``: the first ``n`` training fields, each as train and as val."""
    rows = [{"path": f, "split": split} for split in ("train", "val")
            for f in plan.train_files()[:n]]
    return write_manifest_rows(plan.manifest(n), rows)


def train_command(plan: LabPlan, n: int, config: str | Path = CONFIG, model: str = "default",
                  minutes: float = 10.0, threads: int | None = 2, bf16: bool = False,
                  extra: Sequence[str] = ()) -> list[str]:
    """The ``ri2fl train`` command line of the fine-tuning on ``n`` volumes."""
    cmd = [sys.executable, "-m", "ri2fl.cli", "train", str(config), "--finetune", model,
           "--data", str(plan.manifest(n)), "--out", str(plan.run_dir(n)),
           "--max-minutes", f"{minutes:g}"]
    if threads:
        cmd += ["--threads", str(threads)]
    if bf16:
        cmd.append("--bf16")
    return cmd + list(extra)


def _child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(cmd: Sequence[str], log: Path) -> dict[str, float]:
    """Run ``cmd`` (its output into ``log``); its wall-clock and CPU minutes.

    Raises
    ------
    RuntimeError
        When the command fails (the end of its log in the message).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    cpu0, wall0 = _child_cpu_seconds(), time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        code = subprocess.call(list(cmd), stdout=fh, stderr=subprocess.STDOUT)
    timing = {"wall_minutes": (time.perf_counter() - wall0) / 60,
              "cpu_minutes": (_child_cpu_seconds() - cpu0) / 60}
    if code != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-15:])
        raise RuntimeError(f"{shlex.join(cmd)} failed ({code}):\n{tail}")
    return timing


def fine_tune(plan: LabPlan, n: int, **command: Any) -> dict[str, float]:
    """Fine-tune on ``n`` volumes (unless done before); its timing (``timing.json``)."""
    done = plan.run_dir(n) / "timing.json"
    if done.is_file() and (plan.run_dir(n) / "best.pt").is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    write_size_manifest(plan, n)
    cmd = train_command(plan, n, **command)
    print(f"n = {n}: {shlex.join(cmd)}", flush=True)
    timing = run_timed(cmd, plan.out / f"train_n{n}.log")
    timing["command"] = shlex.join(cmd)
    done.write_text(json.dumps(timing, indent=1), encoding="utf-8")
    return timing


def score(plan: LabPlan, model: str = "default", batch_size: int = 2) -> pd.DataFrame:
    """PCC etc. of the shipped model (``n=0``) and each fine-tuned one on the test fields.

    Returns
    -------
    DataFrame
        :func:`ri2fl.evaluate.runner.evaluate_models`'s table, with ``n`` (volumes) added.
    """
    from ri2fl.evaluate.runner import evaluate_models, find_fovs, model_predictor
    from ri2fl.models import load

    sources = {SHIPPED: model, **{n: str(plan.run_dir(n) / "best.pt") for n in plan.sizes}}
    predictors = {f"n={n}": model_predictor(load(src), batch_size=batch_size, progress=False)
                  for n, src in sources.items()}
    fovs = find_fovs(plan.data / "manifest.csv", split="test")
    metrics = evaluate_models(fovs, predictors, structures=False, desc="score")
    metrics.insert(0, "n", metrics["model"].str.removeprefix("n=").astype(int))
    return metrics


def curve_table(metrics: pd.DataFrame,
                timings: Mapping[int, Mapping[str, float]]) -> pd.DataFrame:
    """One row per number of volumes: minutes, mean PCC per target over the test fields, and
    the mean of the targets.

    Parameters
    ----------
    metrics : DataFrame
        Columns ``n``, ``fov``, ``target``, ``pcc`` (e.g. :func:`score`'s).
    timings : mapping
        n -> ``wall_minutes``, ``cpu_minutes`` (absent for the shipped model, n = 0).
    """
    from ri2fl.evaluate.runner import summarise

    # summarise's own count column is "n"
    summary = summarise(metrics.rename(columns={"n": "volumes"}), by=("volumes", "target"))
    pcc = summary.pivot(index="volumes", columns="target", values="pcc_mean")
    pcc = pcc[[t for t in TARGETS if t in pcc.columns]]
    table = pd.DataFrame({
        "n": pcc.index.astype(int),
        "n_test_fields": metrics.groupby("n")["fov"].nunique().reindex(pcc.index).to_numpy(),
        "wall_minutes": [timings.get(n, {}).get("wall_minutes", 0.0) for n in pcc.index],
        "cpu_minutes": [timings.get(n, {}).get("cpu_minutes", 0.0) for n in pcc.index]})
    for target in pcc.columns:
        table[f"pcc_{target}"] = pcc[target].to_numpy()
    table["pcc_mean"] = pcc.mean(axis=1, skipna=True).to_numpy()
    return table.sort_values("n").reset_index(drop=True)


def curve_markdown(table: pd.DataFrame, plan_note: str = "") -> str:
    """The table as Markdown: n | CPU minutes | wall minutes | PCC per target | mean."""
    targets = [c.removeprefix("pcc_") for c in table.columns
               if c.startswith("pcc_") and c != "pcc_mean"]
    head = ["paired volumes", "CPU min", "wall min", *targets, "mean"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        n = int(r["n"])
        label = "0 (shipped model)" if n == SHIPPED else str(n)
        cells = [label, f"{r['cpu_minutes']:.1f}", f"{r['wall_minutes']:.1f}",
                 *(_pcc(r[f"pcc_{t}"]) for t in targets), _pcc(r["pcc_mean"])]
        lines.append("| " + " | ".join(cells) + " |")
    return (plan_note + "\n\n" if plan_note else "") + "\n".join(lines) + "\n"


def _pcc(value: float) -> str:
    return "—" if value is None or np.isnan(value) else f"{value:.3f}"


def describe(plan: LabPlan, command: Mapping[str, Any]) -> str:
    """What was measured, in one paragraph (the table's heading)."""
    spec, optics = plan.fields[0]
    n_test = sum(s.split == "test" for s, _ in plan.fields)
    return (f"Lab microscope: {spec.cell_type} fields of {'x'.join(map(str, spec.shape))} "
            f"voxels through the physical tomograph at {optics['wavelength_um']} µm, NA "
            f"{optics['na']}, {optics['n_illuminations']} beams (outside the training ranges: "
            f"{'; '.join(optics_outside_training(optics))}). Fine-tuned from "
            f"`{command.get('model', 'default')}` with `ri2fl train "
            f"{Path(command.get('config', CONFIG)).name}`, "
            f"{command.get('minutes', 10):g} minutes of training each, "
            f"{command.get('threads') or 'all'} threads; PCC per target, mean over "
            f"{n_test} test fields (one deterministic pass).")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--config", type=Path, default=CONFIG, help="fine-tune configuration")
    p.add_argument("--model", default="default", help="the model fine-tuned (default: default)")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES),
                   help="numbers of paired volumes (default 1 2 4 8)")
    p.add_argument("--minutes", type=float, default=10.0,
                   help="training minutes per fine-tuning (--max-minutes; default 10)")
    p.add_argument("--threads", type=int, default=2, help="torch threads of each run (2)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU with avx512_bf16)")
    p.add_argument("--n-train", type=int, default=8, help="training fields simulated (8)")
    p.add_argument("--n-test", type=int, default=4, help="test fields simulated (4)")
    p.add_argument("--cell-type", default="hek293")
    p.add_argument("--n-cells", type=int, default=3, help="cells asked per field (3)")
    p.add_argument("--shape", type=int, nargs=3, default=[32, 192, 192], metavar=("Z", "Y", "X"))
    p.add_argument("--workers", type=int, default=2, help="processes simulating fields (2)")
    p.add_argument("--batch-size", type=int, default=2, help="inference batch when scoring")
    p.add_argument("--train-args", default="",
                   help="more ri2fl train options, one string (a smoke test: "
                        "'--steps-per-epoch 1 --patch-size 16 48 48')")
    p.add_argument("--plan", action="store_true", help="print the fields and commands; stop")
    args = p.parse_args(argv)
    plan = plan_lab(args.out, args.n_train, args.n_test, args.sizes, args.cell_type,
                    args.n_cells, args.shape)
    command = {"config": args.config, "model": args.model, "minutes": args.minutes,
               "threads": args.threads, "bf16": args.bf16,
               "extra": shlex.split(args.train_args)}
    if args.plan:
        for spec, _ in plan.fields:
            print(f"{spec.split:5s} {spec.seed} {spec.cell_type} -> {plan.data / spec.file}")
        for n in plan.sizes:
            print(f"n = {n}: {shlex.join(train_command(plan, n, **command))}")
        return 0
    print(f"lab data: {write_lab_data(plan, args.workers)}", flush=True)
    timings = {n: fine_tune(plan, n, **command) for n in plan.sizes}
    metrics = score(plan, args.model, args.batch_size)
    metrics.to_csv(args.out / "metrics.csv", index=False, float_format="%.5g")
    table = curve_table(metrics, timings)
    table.to_csv(args.out / "adaptation.csv", index=False, float_format="%.4f")
    text = curve_markdown(table, describe(plan, command))
    (args.out / "adaptation.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
