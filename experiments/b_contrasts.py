"""Experiment (b): RI2FL against BF2FL and DIC2FL on the same held-out FOVs, with t-tests.

    python experiments/b_contrasts.py -o runs/experiments/b_contrasts \
        --ri default --bf runs/bf2fl --dic runs/dic2fl --tile-size 32 128 128
"""

from __future__ import annotations

from _common import parser, report, setup
from paper import contrasts

if __name__ == "__main__":
    p = parser(__doc__, "runs/experiments/b_contrasts")
    p.add_argument("--ri", default="default", help="RI2FL model (name or checkpoint)")
    p.add_argument("--bf", required=True, help="BF2FL checkpoint or training folder")
    p.add_argument("--dic", required=True, help="DIC2FL checkpoint or training folder")
    p.add_argument("--n-per-type", type=int, default=12,
                   help="held-out FOVs per cell type (6 give a t-test too little power)")
    p.add_argument("--shape", type=int, nargs=3, default=[32, 192, 192])
    p.add_argument("--cell-types", nargs="+", default=["fibroblast"])
    p.add_argument("--tile-size", type=int, nargs=3, metavar=("Z", "Y", "X"),
                   help="one inference tile for all three models (default: each model's own)")
    args = p.parse_args()
    setup(args)
    report(contrasts.run(args.out, {"RI2FL": args.ri, "BF2FL": args.bf, "DIC2FL": args.dic},
                         cell_types=args.cell_types, n_per_type=args.n_per_type,
                         shape=args.shape, batch_size=args.batch_size, data_dir=args.data_dir,
                         tile_size=args.tile_size))
