"""Evaluation of inferred fluorescence: metrics, structure matching, runs and experiments.

>>> from ri2fl.evaluate import pcc, ssim, psnr, match_instances   # doctest: +SKIP
"""

from .metrics import (
    InstanceMatch,
    average_precision,
    dice,
    mae,
    match_instances,
    mse,
    pcc,
    psnr,
    ssim,
)
from .structures import (
    StructureMatch,
    detect_structures,
    match_structures,
    matched_fraction_ci,
    matched_fraction_difference_ci,
    structure_differences,
    structure_summary,
)

__all__ = [
    "InstanceMatch", "StructureMatch", "average_precision", "detect_structures", "dice", "mae",
    "match_instances", "match_structures", "matched_fraction_ci",
    "matched_fraction_difference_ci", "mse", "pcc", "psnr", "ssim", "structure_differences",
    "structure_summary",
]
