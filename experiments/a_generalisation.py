"""Experiment (a): the default model (trained on fibroblasts) on held-out FOVs of every family.

    python experiments/a_generalisation.py -o runs/experiments/a_generalisation
    python experiments/a_generalisation.py --tta 8 --mc 8 \
        -o runs/experiments/a_generalisation_tta8_mc8
"""

from __future__ import annotations

from _common import held_out_arguments, parser, report, setup
from paper import generalisation

if __name__ == "__main__":
    p = parser(__doc__, "runs/experiments/a_generalisation")
    held_out_arguments(p)
    p.add_argument("--cell-types", nargs="+", default=None)
    p.add_argument("--tta", type=int, default=0, help="test-time augmentations (0: off)")
    p.add_argument("--mc", type=int, default=0, help="Monte-Carlo dropout passes (0: off)")
    args = p.parse_args()
    setup(args)
    report(generalisation.run(args.out, model=args.model, cell_types=args.cell_types,
                              n_per_type=args.n_per_type, shape=args.shape,
                              batch_size=args.batch_size, data_dir=args.data_dir,
                              tta=args.tta, mc=args.mc))
