"""Training data: paired files from manifests or folders, random patches where signal is."""

from .dataset import (
    PAIRED_SUFFIXES,
    PairedVolume,
    PatchDataset,
    describe,
    list_samples,
    load_pair,
    manifest_weights,
    normalize_input,
    safe_join,
    target_variances,
)
from .empty import EmptyMediumPatches

__all__ = ["PAIRED_SUFFIXES", "EmptyMediumPatches", "PairedVolume", "PatchDataset",
           "describe", "list_samples", "load_pair", "manifest_weights", "normalize_input",
           "safe_join", "target_variances"]
