"""``ri2fl evaluate``: score models against true fluorescence on paired data."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate models on paired RI/fluorescence data (metrics, t-tests, figures, report)"

EPILOG = """\
Examples:
  # the shipped model on the test split of a simulated data set
  ri2fl simulate -o sim/ --cell-types fibroblast epithelial macrophage --n 10 --bf --dic
  ri2fl evaluate --data sim/manifest.csv -o eval/
  # only two cell types, with uncertainty (8 TTA + 8 MC-dropout passes); the inferred
  # fluorescence scored is then the final one, the mean of the two ensemble means
  ri2fl evaluate --data sim/ -o eval/ --cell-types epithelial macrophage --tta 8 --mc 8
  # RI2FL against BF2FL and DIC2FL on the same FOVs (t-tests against the first model)
  ri2fl evaluate --model default runs/bf2fl runs/dic2fl --data sim/ -o compare/
  # your own measurements: Tomocube TCF files holding RI and 8-bit fluorescence
  ri2fl evaluate --data my_tcfs/ --split all -o eval_lab/ --fl-scale 255 \\
      --channel-map nucleus=CH0 actin=CH1 lipid_droplets=CH2
  # the segmentation routes (organelle Dice, cell F1) on held-out simulated families
  ri2fl simulate -o sim_seg/ --cell-types epithelial macrophage --n 4
  ri2fl evaluate --segmentation --data sim_seg/ --split all -o eval_seg/ --per-family 2

Writes DIR/metrics.csv (one row per model, FOV and target: pcc, ssim, psnr, mae, structure
matching and uncertainty columns), DIR/summary.csv (mean and s.d. by model, cell type and
target), DIR/structures.csv and DIR/structures_by_size.csv (each true droplet, nucleolus and
mitochondrial fragment: its volume and whether it was matched within 0.5 µm),
DIR/structures_summary.csv (the fraction matched within 0.5 µm pooled over FOVs, with its 95 %
confidence interval from a bootstrap over FOVs), DIR/ttests.csv
(several models), DIR/figures/*.png and DIR/report.html.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", nargs="+", action="extend", default=None, metavar="M",
                        help="shipped model name, checkpoint or training folder; several "
                             "(--model A B or --model A --model B) to compare, the first "
                             "being the reference of the t-tests (default: default)")
    parser.add_argument("--label", nargs="+", default=None, metavar="NAME",
                        help="names of the models in tables and figures (default: RI2FL, "
                             "BF2FL, DIC2FL from each model's input, else the file name)")
    parser.add_argument("--data", required=True, metavar="MANIFEST_OR_FOLDER",
                        help="manifest.csv (ri2fl simulate's, or path,cell_type,split rows of "
                             "your own files), or a folder of paired files: .h5, Tomocube "
                             ".TCF with fluorescence, OME-Zarr with an 'ri' channel")
    parser.add_argument("--channel-map", nargs="+", default=None, metavar="TARGET=CHANNEL",
                        help="which fluorescence channel of a TCF / OME-Zarr holds which "
                             "target, e.g. nucleus=CH0 actin=CH1 (default: channels named "
                             "like the targets)")
    parser.add_argument("--fl-scale", type=float, default=1.0, metavar="S",
                        help="fluorescence value that means 1 on the models' fixed scale, one "
                             "number for the whole data set (e.g. 255 for 8-bit TCF "
                             "fluorescence; default: 1)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--split", default="test",
                        help="manifest split to evaluate; 'all' for every FOV (default: test)")
    parser.add_argument("--cell-types", nargs="+", default=None, metavar="T",
                        help="only these cell types")
    parser.add_argument("--targets", nargs="+", default=None, metavar="T",
                        help="only these targets (default: all the model predicts)")
    parser.add_argument("--tta", type=int, default=0, metavar="N",
                        help="test-time augmentations for the data uncertainty; their mean is "
                             "part of the fluorescence scored (default: 0, one plain pass)")
    parser.add_argument("--mc", type=int, default=0, metavar="N",
                        help="Monte-Carlo dropout passes for the model uncertainty; their mean "
                             "is part of the fluorescence scored (default: 0)")
    parser.add_argument("--panels", type=int, default=2, metavar="N",
                        help="max-projection panels per model, one per cell type (default: 2)")
    parser.add_argument("--align-z", action="store_true",
                        help="first shift the true fluorescence along z onto the RI "
                             "(cross-correlation), for data with RI/FL misregistration")
    parser.add_argument("--no-structures", action="store_true",
                        help="skip structure detection and matching (faster)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="B",
                        help="patches per forward pass (default: the predictor's)")
    parser.add_argument("--segmentation", action="store_true",
                        help="score the shipped segmentation routes instead (Dice per organelle, "
                             "cell F1 at IoU 0.5; needs simulated masks and cell labels): "
                             "DIR/segmentation.csv and segmentation.md")
    parser.add_argument("--per-family", type=int, default=None, metavar="N",
                        help="--segmentation: at most N fields per cell type")
    parser.add_argument("--organelle-model", default="segment-default", metavar="M",
                        help="--segmentation: organelle network, a shipped name or a "
                             "checkpoint (default: segment-default)")
    parser.add_argument("--cell-model", default="cell-default", metavar="M",
                        help="--segmentation: cell network (default: cell-default)")


def _channel_map(pairs: list[str] | None) -> dict[str, str]:
    from ..constants import TARGETS
    from ..errors import ConfigError

    mapping = {}
    for pair in pairs or []:
        target, sep, channel = pair.partition("=")
        if not sep or not channel or target not in TARGETS:
            raise ConfigError(f"cannot read {pair!r}", "--channel-map",
                              f"write TARGET=CHANNEL with TARGET one of {list(TARGETS)}")
        mapping[target] = channel
    return mapping


def _labels(models: list, requested: list[str] | None, names: list[str]) -> list[str]:
    from ..errors import ConfigError
    from ..evaluate.runner import input_kind

    if requested:
        if len(requested) != len(models):
            raise ConfigError(f"{len(requested)} labels for {len(models)} models", "--label",
                              "give one label per --model")
        return list(requested)
    by_kind = [f"{input_kind(m).upper()}2FL" for m in models]
    if len(set(by_kind)) == len(by_kind):
        return by_kind
    stems = [Path(n).stem if Path(n).suffix else n for n in names]
    return stems if len(set(stems)) == len(stems) else [f"{s}_{i}" for i, s in enumerate(stems)]


def _run_segmentation(args: argparse.Namespace) -> int:
    from ..evaluate.segmentation import evaluate_segmentation

    summary = evaluate_segmentation(args.data, args.output,
                                    split=None if args.split in ("all", "") else args.split,
                                    per_family=args.per_family, cell_types=args.cell_types,
                                    organelle_model=args.organelle_model,
                                    cell_model=args.cell_model,
                                    fl_model=(args.model or ["default"])[0])
    print(summary.round(3).to_string())
    print(f"wrote {Path(args.output) / 'segmentation.csv'} and segmentation.md")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..evaluate.runner import input_kind, model_predictor, run_evaluation
    from ..models import load

    if args.segmentation:
        return _run_segmentation(args)

    for opt in ("tta", "mc", "panels"):
        if getattr(args, opt) < 0:
            from ..errors import ConfigError
            raise ConfigError(f"must be >= 0, got {getattr(args, opt)}", f"--{opt}")
    if not args.fl_scale > 0:
        from ..errors import ConfigError
        raise ConfigError(f"must be > 0, got {args.fl_scale}", "--fl-scale")
    channel_map = _channel_map(args.channel_map)
    names = args.model or ["default"]
    models = [load(name, device=args.device) for name in names]
    labels = _labels(models, args.label, names)
    extra = {"device": args.device}
    if args.batch_size:
        extra["batch_size"] = args.batch_size
    predictors = {lab: model_predictor(m, tta=args.tta, mc=args.mc, **extra)
                  for lab, m in zip(labels, models, strict=True)}
    result = run_evaluation(
        predictors, args.data, args.output,
        split=None if args.split in ("all", "") else args.split,
        cell_types=args.cell_types, targets=args.targets, n_panels=args.panels,
        structures=not args.no_structures, align_z=args.align_z,
        channel_map=channel_map, fl_scale=args.fl_scale,
        input_kinds={lab: input_kind(m) for lab, m in zip(labels, models, strict=True)})
    overall = result.summary[result.summary["cell_type"] == "all"]
    for row in overall.itertuples(index=False):
        print(f"{row.model:>8s} {row.target:>15s}  PCC {row.pcc_mean:.3f} ± {row.pcc_sd:.3f}  "
              f"SSIM {row.ssim_mean:.3f}  PSNR {row.psnr_mean:.1f} dB  (n={row.n})")
    pooled = result.structure_summary
    for r in ([] if pooled is None else pooled.to_dict(orient="records")):
        print(f"{r['model']:>8s} {r['target']:>15s}  {100 * r['matched_within_0.5um']:.1f} % "
              f"of {r['n_true']} structures matched within 0.5 µm (95 % CI "
              f"{100 * r['ci_low']:.1f}-{100 * r['ci_high']:.1f} %); {r['n_pred']} predicted, "
              f"{100 * r['precision_0.5um']:.1f} % of them matched")
    diffs = result.structure_differences
    for r in ([] if diffs is None else diffs.to_dict(orient="records")):
        print(f"{r['model']:>8s} {r['target']:>15s}  {100 * r['difference']:+.1f} points "
              f"against {r['reference']} (paired 95 % CI {100 * r['ci_low']:+.1f} to "
              f"{100 * r['ci_high']:+.1f})")
    print(f"wrote {result.files['metrics']}, {result.files['summary']} and "
          f"{result.files['report']}")
    return 0
