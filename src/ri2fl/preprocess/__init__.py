"""Preprocessing as plain functions on arrays.

- :func:`resample` / :func:`resample_to_shape`: to the canonical 0.2 x 0.15 x 0.15 µm grid and
  back to the input grid;
- :func:`normalize_ri`: RI window 1.337..1.390 to [0, 1], medium index as a parameter;
- :func:`estimate_axial_shift` / :func:`shift_axial`: axial RI/FL registration;
- :func:`fl_to_ri_grid`: a TCF fluorescence stack (own voxel size, ``OffsetZ``) onto the RI
  grid;
- :func:`check_grid_budget`: refuse a resampled grid too large for the voxel limit, memory or
  disk before it is allocated.
"""

from .budget import available_memory_bytes, check_grid_budget, free_disk_bytes
from .normalize import normalize_ri
from .register import estimate_axial_shift, fl_to_ri_grid, shift_axial
from .resample import resample, resample_to_shape, resampled_shape, resampled_voxel_size

__all__ = ["available_memory_bytes", "check_grid_budget", "estimate_axial_shift", "fl_to_ri_grid",
           "free_disk_bytes", "normalize_ri", "resample", "resample_to_shape", "resampled_shape",
           "resampled_voxel_size", "shift_axial"]
