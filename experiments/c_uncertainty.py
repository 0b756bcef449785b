"""Experiment (c): uncertainty against absolute error (Spearman), and nucleus uncertainty
through a simulated mitosis.

    python experiments/c_uncertainty.py -o runs/experiments/c_uncertainty
"""

from __future__ import annotations

from _common import held_out_arguments, parser, report, setup
from paper import timelapse, uncertainty

if __name__ == "__main__":
    p = parser(__doc__, "runs/experiments/c_uncertainty")
    held_out_arguments(p, n_per_type=1)
    p.add_argument("--tta", type=int, default=4)
    p.add_argument("--mc", type=int, default=4)
    p.add_argument("--cell-types", nargs="+", default=["fibroblast", "epithelial", "macrophage"])
    p.add_argument("--frames", type=int, default=8, help="frames of the mitosis time-lapse")
    p.add_argument("--skip-spearman", action="store_true")
    p.add_argument("--skip-mitosis", action="store_true")
    args = p.parse_args()
    setup(args)
    if not args.skip_spearman:
        report(uncertainty.run(args.out, model=args.model, cell_types=args.cell_types,
                               n_per_type=args.n_per_type, shape=args.shape, tta=args.tta,
                               mc=args.mc, batch_size=args.batch_size,
                               data_dir=args.data_dir))
    if not args.skip_mitosis:
        report(timelapse.mitosis(args.out, model=args.model, n_frames=args.frames,
                                 tta=args.tta, mc=args.mc, batch_size=args.batch_size))
