"""Numbers of the system that every part shares (see shared/spec/system.md)."""

from __future__ import annotations

#: Canonical voxel size (z, y, x) in µm: every tomogram is resampled to it before inference.
CANONICAL_VOXEL_SIZE_UM: tuple[float, float, float] = (0.2, 0.15, 0.15)

#: RI window fed to the networks: clipped to it, then scaled to [0, 1].
RI_CLIP: tuple[float, float] = (1.337, 1.390)

#: Medium index of culture medium at 532 nm.
MEDIUM_INDEX: float = 1.337

#: Refractive-index increment in mL/g (= µm³/pg) at 532 nm, for dry mass.
ALPHA_ML_PER_G: float = 0.190

#: The six inferred fluorescence targets, in the order of the reference tool's TCF channels.
TARGETS: tuple[str, ...] = (
    "membrane",
    "actin",
    "mitochondria",
    "lipid_droplets",
    "nucleus",
    "nucleolus",
)

#: Binary organelle masks predicted by the segmentation network.
ORGANELLE_MASKS: tuple[str, ...] = ("nucleus", "nucleolus", "membrane", "lipid_droplets")

#: Standard field of view (z, y, x) in voxels.
STANDARD_FOV_SHAPE: tuple[int, int, int] = (64, 512, 512)

#: Wavelength (µm) and detection NA of the HT-series holotomograph.
WAVELENGTH_UM: float = 0.532
NA_DETECTION: float = 1.2
NA_ILLUMINATION: float = 1.08
