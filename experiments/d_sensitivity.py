"""Experiment (d): sensitivity to RI reconstruction error (noise, missing cone, medium offset).

    python experiments/d_sensitivity.py -o runs/experiments/d_sensitivity
"""

from __future__ import annotations

from _common import held_out_arguments, parser, report, setup
from paper import sensitivity

if __name__ == "__main__":
    p = parser(__doc__, "runs/experiments/d_sensitivity")
    held_out_arguments(p)
    p.add_argument("--cell-types", nargs="+", default=["fibroblast"])
    args = p.parse_args()
    setup(args)
    report(sensitivity.run(args.out, model=args.model, cell_types=args.cell_types,
                           n_per_type=args.n_per_type, shape=args.shape,
                           batch_size=args.batch_size, data_dir=args.data_dir))
