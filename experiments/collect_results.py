"""Gather the results.md / *.md of every experiment folder into one Markdown section.

    python experiments/collect_results.py runs/experiments > /tmp/results.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

SECTIONS = (
    ("a_generalisation", "(a) Cross-cell-type generalisation and structure matching",
     ["results.md"]),
    ("b_contrasts", "(b) RI2FL against BF2FL and DIC2FL", ["results.md"]),
    ("c_uncertainty", "(c) Uncertainty against error, and through a mitosis",
     ["results.md", "mitosis.md"]),
    ("d_sensitivity", "(d) Sensitivity to RI reconstruction error", ["results.md"]),
    ("e_bleaching", "(e) Bleaching over a time-lapse", ["bleaching.md"]),
)

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("root", type=Path, nargs="?", default=Path("runs/experiments"))
    args = p.parse_args()
    for folder, title, files in SECTIONS:
        print(f"### {title}\n")
        found = [args.root / folder / f for f in files if (args.root / folder / f).exists()]
        if not found:
            print("Not run.\n")
        for f in found:
            print(f.read_text().strip() + "\n")
