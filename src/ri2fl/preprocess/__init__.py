"""Preprocessing as plain functions on arrays.

- :func:`resample` / :func:`resample_to_shape`: to the canonical 0.2 x 0.15 x 0.15 µm grid and
  back to the input grid (linear; ``order=0`` nearest for labels and masks; ``anti_alias``
  as segmentation has it), :func:`same_grid`: when not to; the one resampler of training,
  inference, segmentation and evaluation;
- :class:`LazyResampled` / :func:`resample_blockwise`: the same linear resampling read and
  written region by region, for volumes too large for memory;
- :func:`normalize_ri`: RI window 1.337..1.390 to [0, 1], medium index as a parameter; the one
  RI normalisation of the networks' inputs, in training and at inference;
- :func:`estimate_axial_shift` / :func:`shift_axial`: axial RI/FL registration;
- :func:`fl_to_ri_grid`: a TCF fluorescence stack (own voxel size, ``OffsetZ``) onto the RI
  grid;
- :func:`check_grid_budget`: refuse a resampled grid too large for the voxel limit, memory or
  disk before it is allocated.
"""

from .budget import (
    MAX_INPUT_VOXEL_UM,
    available_memory_bytes,
    check_grid_budget,
    check_resolves_cells,
    free_disk_bytes,
)
from .lazy import LazyResampled, resample_blockwise
from .normalize import normalize_ri
from .register import estimate_axial_shift, fl_to_ri_grid, shift_axial
from .resample import (
    resample,
    resample_to_shape,
    resampled_shape,
    resampled_voxel_size,
    same_grid,
)

__all__ = ["MAX_INPUT_VOXEL_UM", "LazyResampled", "available_memory_bytes", "check_grid_budget",
           "check_resolves_cells", "estimate_axial_shift", "fl_to_ri_grid",
           "free_disk_bytes", "normalize_ri", "resample", "resample_blockwise",
           "resample_to_shape", "resampled_shape", "resampled_voxel_size", "same_grid",
           "shift_axial"]
