"""``ri2fl demo``: the whole pipeline on a simulated experiment and a real cell."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "simulate an experiment, infer, segment, profile and report it (the main demo)"

EPILOG = """Examples:
  ri2fl demo                    # -> demo_out/report.html, features.parquet/.csv, volumes/
  ri2fl demo -o my_demo --quick # a smaller experiment (about a minute)
  ri2fl demo --ground-truth     # the simulator's true channels and masks, no networks
  ri2fl demo --hl60 ../shared/data/hl60/hl60_ri.h5

Two cell types (macrophages, HEK 293) x two conditions (control, stimulated: denser
cytoplasm, lipid droplets 1.5x larger in radius), several fields per group (the replicates),
a time-lapse per condition, and the real HL60 cell (out of domain). Open report.html in a
browser; design.json holds the ground truth; the volumes are OME-Zarr (napari, Fiji/MoBIE,
ri2fl info).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("-o", "--output", type=Path, default=Path("demo_out"),
                        help="output folder (default demo_out)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller fields and a shorter time-lapse")
    parser.add_argument("--ground-truth", action="store_true",
                        help="profile the simulator's true fluorescence and masks (no models)")
    parser.add_argument("--model", default="default",
                        help="fluorescence model: shipped name or checkpoint (default: default)")
    parser.add_argument("--hl60", type=Path, metavar="H5",
                        help="the real HL60 RI file (default: shared/data/hl60, else the "
                             "bundled copy)")
    parser.add_argument("--no-hl60", action="store_true", help="skip the real HL60 cell")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from .. import demo

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = demo.run_demo(args.output, demo.QUICK if args.quick else demo.FULL,
                           model=args.model, hl60=args.hl60, run_hl60=not args.no_hl60,
                           oracle=args.ground_truth,
                           echo=lambda line: print(line, file=sys.stderr, flush=True))
    out = result.out_dir
    rel = os.path.relpath
    whole = int((~result.features["cut_by_edge"]).sum())
    print(f"\nri2fl demo done in {result.seconds:.0f} s: {len(result.features)} cell images "
          f"profiled ({result.n_cells_simulated} simulated), {whole} of them whole (not cut "
          "by the field edge).")
    print("Cells analysed (the report's counts):")
    print(result.counts.to_string(index=False))
    print(f"  report            {rel(result.report)}")
    for table in result.tables:
        print(f"  feature table     {rel(table)}")
    print(f"  volumes (OME-Zarr) {rel(out / 'volumes')}/ ({len(result.volumes)} stores)")
    print(f"  feature agreement {rel(out / 'feature_agreement.csv')} (inferred vs true "
          f"fluorescence, same cells: median per-feature r = {result.validation_r:.3f})")
    print(f"  design            {rel(out / 'design.json')} (plan, stimulus, ground truth)")
    if result.hl60 is not None:
        print(f"  HL60 real cell    {rel(out / 'hl60' / 'hl60_features.csv')}")
    return 0
