"""Simulator of living cells as an illumination-scanning holotomograph sees them.

Ground truth for everything: true and reconstructed refractive index, six fluorescence
targets, organelle masks, cell and nucleus instance labels, brightfield and DIC z-stacks,
time-lapses and tiled large fields. See ``docs/simulator.md`` and ``shared/spec/optics.md``.

Examples
--------
>>> from ri2fl.simulate import simulate_fov
>>> fov = simulate_fov("fibroblast", seed=0, shape=(32, 96, 96))  # doctest: +SKIP
>>> fov.ri.shape, sorted(fov.fl)  # doctest: +SKIP
"""

from .dataset import simulate_dataset
from .fov import SimulatedFOV, simulate_fov, simulate_tiles
from .phantoms import CELL_TYPES, SIMULATED_KINDS
from .timelapse import simulate_timelapse

__all__ = ["CELL_TYPES", "SIMULATED_KINDS", "SimulatedFOV", "simulate_dataset", "simulate_fov",
           "simulate_tiles", "simulate_timelapse"]
