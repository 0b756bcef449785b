"""Experiment (e): over a simulated time-lapse the real fluorescence bleaches, the inferred
one does not.

    python experiments/e_bleaching.py -o runs/experiments/e_bleaching
"""

from __future__ import annotations

from _common import parser, report, setup
from paper import timelapse

if __name__ == "__main__":
    p = parser(__doc__, "runs/experiments/e_bleaching")
    p.add_argument("--model", default="default")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--half-life", type=float, default=4.0, help="bleaching half-life in frames")
    args = p.parse_args()
    setup(args)
    report(timelapse.bleaching(args.out, model=args.model, n_frames=args.frames,
                               half_life_frames=args.half_life, batch_size=args.batch_size))
