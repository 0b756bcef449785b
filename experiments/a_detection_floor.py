"""Experiment (a), structures: the detection's own ceiling on degraded copies of the truth.

    python experiments/a_detection_floor.py -o runs/experiments/a_detection_floor
    python experiments/a_detection_floor.py --manifest runs/sim_test/manifest.csv \
        -o runs/experiments/a_detection_floor_sim_test
"""

from __future__ import annotations

from _common import held_out_arguments, parser
from paper.common import markdown_table
from paper.generalisation import detection_floor

if __name__ == "__main__":
    p = parser(__doc__, "runs/experiments/a_detection_floor")
    p.add_argument("--grid", type=float, nargs=3, default=[0.4, 0.3, 0.3],
                   help="model grid (z y x, µm) of the 'grid' copy: the default model's")
    p.add_argument("--manifest", default=None,
                   help="paired fields to use (manifest or folder) instead of the held-out ones")
    held_out_arguments(p, model=False)
    args = p.parse_args()
    table = detection_floor(args.out, grid_um=args.grid, n_per_type=args.n_per_type,
                            shape=args.shape, data_dir=args.data_dir, manifest=args.manifest)
    print(markdown_table(table.pivot_table(index=["target", "copy"], columns="threshold",
                                           values="matched").round(3).reset_index()))
