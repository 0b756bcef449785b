"""Experiment (a), structures: the fraction matched within 0.5 µm by structure volume.

    python experiments/a_structure_sizes.py -o runs/experiments/a_structure_sizes
"""

from __future__ import annotations

from _common import held_out_arguments, parser, setup
from paper.common import markdown_table
from paper.generalisation import structures_by_size

if __name__ == "__main__":
    p = parser(__doc__, "runs/experiments/a_structure_sizes")
    held_out_arguments(p)
    p.add_argument("--tta", type=int, default=0, help="test-time augmentations (0, 2, 4, 8)")
    args = p.parse_args()
    setup(args)
    print(markdown_table(structures_by_size(args.out, model=args.model,
                                            n_per_type=args.n_per_type, shape=args.shape,
                                            batch_size=args.batch_size, tta=args.tta,
                                            data_dir=args.data_dir)))
