"""``ri2fl report``: an HTML report (embedding, statistics, plots) of feature tables."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, InputError
from ._common import check_file_output

HELP = ("HTML report of feature tables: UMAP, statistics by replicate within cell types, "
        "box plots, time courses")

EPILOG = """Examples:
  ri2fl report features.parquet -o report.html
  ri2fl report control.parquet pdgf.parquet -o report.html --group-by condition
  ri2fl report features.csv -o report.html --colour-by cell_type cell_volume_um3 --top 9
  ri2fl report features.parquet -o report.html --example cell.TCF --segmentation masks/
  ri2fl report features.parquet -o report.html --overwrite   # replace an earlier report

Several tables are concatenated (give each a --condition when profiling). Cells cut by
the field edge are left out of the statistics unless --keep-edge-cells. Groups are compared
on replicate means (--replicate, default: field, else source file) within each cell type;
with fewer than 3 replicates per group the report says so and runs no test.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("features", nargs="+", type=Path, metavar="FEATURES",
                        help="feature tables from 'ri2fl profile' (.parquet or .csv)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="report .html")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the report -o if ri2fl wrote it (default: refuse)")
    parser.add_argument("--group-by", metavar="COLUMN",
                        help="groups to compare (default: condition, else cell_type, else "
                             "source)")
    parser.add_argument("--colour-by", nargs="+", metavar="COLUMN",
                        help="columns colouring the embedding (groups or features)")
    parser.add_argument("--top", type=int, default=6,
                        help="top-ranked features shown as box plots (default 6)")
    parser.add_argument("--embedding", choices=("umap", "pca"), default="umap",
                        help="embedding method (default umap: 5 neighbours, min_dist 0.5)")
    parser.add_argument("--replicate", metavar="COLUMN",
                        help="the replicate column: groups are compared on its means "
                             "(default: field, else source, one file per field; 'cell' "
                             "treats every cell as independent)")
    parser.add_argument("--within", metavar="COLUMN",
                        help="compare groups within each value of this column (default: "
                             "cell_type when there are several)")
    parser.add_argument("--keep-edge-cells", action="store_true",
                        help="keep cells cut by the field edge in the statistics")
    parser.add_argument("--example", type=Path, action="append", default=[], metavar="RI",
                        help="RI file shown as projections (repeatable)")
    parser.add_argument("--predictions", type=Path, metavar="PATH",
                        help="with --example: OME-Zarr from 'ri2fl predict' (or folder)")
    parser.add_argument("--segmentation", type=Path, metavar="PATH",
                        help="with --example: OME-Zarr from 'ri2fl segment' (or folder)")
    parser.add_argument("--title", default="ri2fl single-cell profile", help="report title")


def read_table(path: Path) -> pd.DataFrame:
    """Read a feature table (.parquet or .csv) with a one-line error when it cannot."""
    if not path.exists():
        raise InputError("no such file", path)
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow and pandas raise many types
        raise InputError(f"cannot read as a feature table ({type(exc).__name__}: {exc})",
                         path, "give a .parquet or .csv written by 'ri2fl profile'") from None


def _example(args: argparse.Namespace, path: Path):
    from ..batch import output_path_for
    from ..io import read
    from ..report import ExampleField

    vol = read(path, frame=0)
    ri = vol.data
    side = {}
    for name in ("predictions", "segmentation"):
        opt = getattr(args, name)
        if opt is None:
            continue
        store = output_path_for(path, opt, ".ome.zarr") if opt.is_dir() and not (
            opt / "zarr.json").exists() else opt
        if name == "segmentation":  # its labels group (or an older store's channels)
            from ..io import read_labels

            side[name] = {k: v[0] if v.ndim == 4 else v
                          for k, v in read_labels(store, names=["cell_labels"]).items()}
            continue
        v = read(store, frame=0, modality="fl")
        side[name] = dict(zip(v.channel_names, v.data))
    pred, seg = side.get("predictions", {}), side.get("segmentation", {})
    fl = {k: v for k, v in pred.items() if "uncertainty" not in k}
    unc = {k.split("_uncertainty")[0]: v for k, v in pred.items() if "uncertainty" in k}
    return ExampleField(path.name, ri, vol.voxel_size_um, seg.get("cell_labels"), fl, unc,
                        vol.medium_index or 1.337)


def run(args: argparse.Namespace) -> int:
    from ..report import build_report

    if args.output.suffix.lower() not in (".html", ".htm"):
        raise ConfigError("the report is HTML", args.output, "name it report.html")
    check_file_output(args.output, [*args.features, *args.example, args.predictions,
                                    args.segmentation], args.overwrite)
    tables = [read_table(p) for p in args.features]
    table = pd.concat(tables, ignore_index=True)
    if table.empty:
        raise InputError("the feature tables hold no cells", args.features[0],
                         "check the segmentation of the inputs")
    examples = [_example(args, p) for p in args.example]
    out = build_report(table, args.output, group_by=args.group_by, colour_by=args.colour_by,
                       examples=examples, top=args.top, embedding=args.embedding,
                       title=args.title, exclude_edge_cells=not args.keep_edge_cells,
                       replicate=args.replicate, within=args.within,
                       overwrite=args.overwrite)
    print(f"report of {len(table)} cells -> {out}")
    return 0
