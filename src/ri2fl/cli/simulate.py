"""``ri2fl simulate``: paired RI / fluorescence data sets, time-lapses and brightfield / DIC."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..progress import progress

HELP = "simulate paired RI / fluorescence fields of view with full ground truth"

EPILOG = """\
Each field of view is written as a paired HDF5 file (datasets ri, fl (C,Z,Y,X) with
channel_names, ri_true, masks/<name>, cell_labels, nucleus_labels, optional bf and dic), read
back with ri2fl.io.read_paired; a manifest.csv lists path, cell_type, seed, split (and frame
for time-lapses).

Examples:
  ri2fl simulate -o sim/ --n 20                          # 20 fibroblast fields, 64x256x256
  ri2fl simulate -o sim/ --cell-types fibroblast hek293 astrocyte --n 10 --seed 1
  ri2fl simulate -o sim/ --cell-types all --n 5 --workers 2
  ri2fl simulate -o sim/ --n 2 --shape 64 512 512 --physics physical --bf --dic
  ri2fl simulate -o movie/ --cell-types hek293 --timelapse 12 --event mitosis
  ri2fl simulate sim/ --cell-type macrophage --n 4 --workers 2
  ri2fl simulate -o lipid/ --n 8 --droplets-per-cell 20 60    # lipid-loaded fibroblasts
  ri2fl simulate -o varied/ --cell-types all procedural --n 4 --domain random
      # every family plus cells of random shape, each imaged by a randomly drawn instrument
      # (optics, reconstruction, noise, artefacts, calibration, voxel size)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..simulate import CELL_TYPES, SIMULATED_KINDS

    parser.epilog = EPILOG
    parser.add_argument("out", nargs="?", type=Path, help="output folder (or use -o)")
    parser.add_argument("-o", "--out", dest="out_opt", type=Path, metavar="DIR",
                        help="output folder")
    parser.add_argument("--cell-types", "--cell-type", nargs="+", default=["fibroblast"],
                        choices=(*SIMULATED_KINDS, "all"), metavar="TYPE",
                        help=f"cell-type families ({', '.join(CELL_TYPES)}), 'all' of "
                             "them, and/or 'procedural' (cells of random shape); default: "
                             "fibroblast")
    parser.add_argument("--n", type=int, default=4, help="fields per cell type (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="data-set seed (default 0)")
    parser.add_argument("--shape", "--fov", nargs=3, type=int, default=[64, 256, 256],
                        metavar=("Z", "Y", "X"),
                        help="field size in voxels of 0.2 x 0.15 x 0.15 µm (default 64 256 256)")
    parser.add_argument("--physics", choices=("fast", "physical", "none"), default="fast",
                        help="tomograph model: fast (support + Gerchberg-Papoulis, default), "
                             "physical (beam propagation + Rytov), none (true RI)")
    parser.add_argument("--domain", choices=("default", "random"), default="default",
                        help="fast physics: image each field with the default instrument, or "
                             "with one drawn at random per field (ri2fl.simulate.domain)")
    parser.add_argument("--pad-z", action="store_true",
                        help="fast physics: reconstruct on a volume padded to twice its height "
                             "(default: a 3.2 µm margin of medium above it)")
    parser.add_argument("--droplets-per-cell", nargs=2, type=int, default=None,
                        metavar=("LOW", "HIGH"),
                        help="draw LOW..HIGH lipid droplets per cell instead of the family's "
                             "range (e.g. 20 60: cells fed oleic acid); single fields only")
    parser.add_argument("--bf", action="store_true", help="also synthesise brightfield z-stacks")
    parser.add_argument("--dic", action="store_true", help="also synthesise DIC z-stacks")
    parser.add_argument("--modalities", default=None,
                        help="comma list of extra contrasts, e.g. 'bf,dic' (ri, fl and masks "
                             "are always written)")
    parser.add_argument("--split", nargs=3, type=float, default=[0.8, 0.1, 0.1],
                        metavar=("TRAIN", "VAL", "TEST"), help="split fractions (0.8 0.1 0.1)")
    parser.add_argument("--fl-shift", type=float, default=0.0, metavar="UM",
                        help="misalign FL and RI along z by up to ±UM µm per field (default 0)")
    parser.add_argument("--timelapse", "--frames", type=int, default=0, metavar="K",
                        help="simulate K-frame time-lapses instead of single fields")
    parser.add_argument("--event", choices=("mitosis", "stimulation"), default=None,
                        help="event in time-lapses")
    parser.add_argument("--bleach-half-life", type=float, default=20.0, metavar="FRAMES",
                        help="fluorescence bleaching half-life in frames (time-lapses, 20)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes simulating in parallel (default 1; FFTs already use "
                             "two threads)")
    parser.add_argument("--overwrite", action="store_true",
                        help="re-simulate files that exist (default: resume); files ri2fl did "
                             "not write are never replaced")


def _modalities(args: argparse.Namespace) -> tuple[str, ...]:
    mods = {m.strip() for m in (args.modalities or "").split(",") if m.strip()}
    mods -= {"ri", "fl", "masks"}
    if args.bf:
        mods.add("bf")
    if args.dic:
        mods.add("dic")
    bad = mods - {"bf", "dic"}
    if bad:
        raise ConfigError(f"unknown modalities {sorted(bad)}", "--modalities",
                          "choose from ri, fl, masks, bf, dic")
    return tuple(sorted(mods))


def _droplets_per_cell(args: argparse.Namespace) -> dict:
    if args.droplets_per_cell is None:
        return {}
    from ..simulate.fov import check_droplets_per_cell

    if args.timelapse:
        raise ConfigError("--droplets-per-cell applies to single fields, not time-lapses",
                          "--droplets-per-cell", "drop --timelapse or --droplets-per-cell")
    return {"droplets_per_cell": check_droplets_per_cell(args.droplets_per_cell,
                                                         "--droplets-per-cell")}


def _domain(args: argparse.Namespace) -> dict:
    if args.domain == "default":
        return {}
    if args.physics != "fast" or args.pad_z or args.timelapse:
        raise ConfigError("--domain random needs the fast tomograph on single fields",
                          "--domain", "drop --physics, --pad-z and --timelapse")
    return {"domain": "random"}


def run(args: argparse.Namespace) -> int:
    from ..simulate import simulate_dataset

    out = args.out_opt or args.out
    if out is None:
        raise ConfigError("no output folder", "ri2fl simulate", "pass -o DIR")
    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}", "--n")
    mods = _modalities(args)
    droplets = _droplets_per_cell(args)
    if "all" in args.cell_types:
        from ..simulate import CELL_TYPES

        args.cell_types = [*CELL_TYPES, *(t for t in args.cell_types
                                          if t not in (*CELL_TYPES, "all"))]
    if args.timelapse:
        manifest = _timelapses(out, args, mods)
    else:
        manifest = simulate_dataset(out, args.cell_types, args.n, seed=args.seed,
                                    shape=tuple(args.shape), physics=args.physics,
                                    modalities=mods, split_fractions=args.split,
                                    overwrite=args.overwrite, workers=args.workers,
                                    max_fl_shift_um=args.fl_shift, pad_z=args.pad_z,
                                    **_domain(args), **droplets)
    print(manifest)
    return 0


def _timelapses(out: Path, args: argparse.Namespace, mods: tuple[str, ...]) -> Path:
    import numpy as np

    from ..simulate import simulate_timelapse
    from ..simulate.dataset import assign_splits, sample_seed
    from ..simulate.phantoms import CELL_TYPES
    from ..simulate.sets import write_fov, write_manifest_rows

    rows = []
    jobs = [(ct, i) for ct in args.cell_types for i in range(args.n)]
    splits = {ct: assign_splits(args.n, args.split,
                                np.random.default_rng([args.seed, CELL_TYPES.index(ct)]))
              for ct in args.cell_types}
    for ct, i in progress(jobs, desc="time-lapses"):
        seed = sample_seed(args.seed, ct, i)
        rels = [f"{ct}/{ct}_{i:04d}_t{t:03d}.h5" for t in range(args.timelapse)]
        rows.extend({"path": rel, "cell_type": ct, "seed": seed, "split": splits[ct][i],
                     "frame": t} for t, rel in enumerate(rels))
        if not args.overwrite and all((out / rel).exists() for rel in rels):
            continue  # resume: the same seed and options give the same frames
        frames = simulate_timelapse(ct, seed, args.timelapse, shape=tuple(args.shape),
                                    event=args.event, physics=args.physics, modalities=mods,
                                    bleach_half_life_frames=args.bleach_half_life)
        for rel, fov in zip(rels, frames, strict=True):
            write_fov(out / rel, fov, splits[ct][i])
    return write_manifest_rows(out / "manifest.csv", rows)
