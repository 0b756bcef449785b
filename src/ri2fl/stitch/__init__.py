"""Large fields of view: register overlapping tiles and fuse them into one volume.

``stitch_tiles(tiles, grid=(rows, cols), overlap=0.1)`` estimates where each tile sits
(phase correlation of neighbouring overlaps with sub-voxel refinement, then a global least
squares fit over the tile graph); ``fuse_tiles`` blends the placed tiles block by block into
any writable array; ``stitch_to_ome_zarr`` streams the fused field into an OME-Zarr store, so
fields of 3200 x 3200 x 65 voxels and more never sit in memory at once.
"""

from .fuse import blend_widths, fuse_tiles, fused_shape, placement
from .register import (
    PairMeasurement,
    global_positions,
    grid_positions,
    measure_pairs,
    neighbour_pairs,
    stitch_tiles,
)

__all__ = [
    "PairMeasurement",
    "blend_widths",
    "fuse_tiles",
    "fused_shape",
    "global_positions",
    "grid_positions",
    "measure_pairs",
    "neighbour_pairs",
    "placement",
    "stitch_tiles",
]
