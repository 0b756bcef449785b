"""Multi-organelle segmentation: one multi-task 3D U-Net, four masks (Choi et al.).

The network (``ri2fl.models.UNet3D`` with a sigmoid head, outputs nucleus, nucleolus,
membrane = whole cell, lipid droplets) is trained with Dice + BCE per organelle, summed
(``ri2fl.train``, loss ``"dice_bce"``), and applied patch by patch with the shared tiler
(:func:`ri2fl.infer.predict_tiled`, spline-window blending). Masks are the probabilities
thresholded at 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..constants import ORGANELLE_MASKS
from ..errors import ModelError

#: Probability above which a voxel belongs to an organelle mask.
MASK_THRESHOLD = 0.5
#: A cell's RI exceeds the medium's by at least this much: the least dense cells hold about
#: 0.05 pg/µm³ of dry mass, i.e. n - n_m = 0.19 µm³/pg x 0.05 pg/µm³ ≈ 0.01; half of it.
MIN_CELL_DN = 0.005
#: Smoothing (µm) of the RI before the support threshold, against voxel noise.
SUPPORT_SIGMA_UM = 0.3


def cell_support(ri: np.ndarray, voxel_size_um: Sequence[float], medium_index: float,
                 min_dn: float = MIN_CELL_DN, sigma_um: float = SUPPORT_SIGMA_UM
                 ) -> np.ndarray:
    """Where cells can be: the RI, smoothed, stands ``min_dn`` above the medium (holes filled).

    A physical guard for the networks: medium that a network marks as cell (missing-cone
    halos above flat cells, textured background) lies outside. On six held-out simulated
    families, 99.8-100 % of every true cell lies inside, and masking the organelle network's
    whole-cell channel with it raised its Dice from 0.78 to 0.93 (mean).

    Parameters
    ----------
    ri : (Z, Y, X) array
        Absolute refractive index (not normalised).
    voxel_size_um : (z, y, x)
        Its voxel size.
    medium_index : float
        Refractive index of the medium.
    min_dn, sigma_um : float
        Contrast threshold and Gaussian smoothing in µm.

    Returns
    -------
    (Z, Y, X) bool
    """
    from scipy import ndimage as ndi

    smooth = ndi.gaussian_filter(np.asarray(ri, np.float32) - np.float32(medium_index),
                                 [sigma_um / v for v in voxel_size_um])
    return ndi.binary_fill_holes(smooth > min_dn)


def load_organelle_model(model: str | torch.nn.Module = "segment-default") -> torch.nn.Module:
    """Load the organelle network by shipped name or path (or pass a module through)."""
    if isinstance(model, torch.nn.Module):
        return model.eval()
    from ..models import load

    net = load(model)
    missing = [t for t in ORGANELLE_MASKS if t not in getattr(net, "targets", [])]
    if missing:
        raise ModelError(f"model predicts {getattr(net, 'targets', '?')}, not the organelle "
                         f"masks {missing}", str(model),
                         "use a segmentation model such as 'segment-default'")
    return net


@torch.no_grad()
def predict_organelles(ri_norm: np.ndarray, model: torch.nn.Module,
                       patch_size: Sequence[int] | None = None, overlap: float = 0.25,
                       batch_size: int = 1) -> dict[str, np.ndarray]:
    """Organelle probabilities of a normalised RI volume on the model's grid.

    Parameters
    ----------
    ri_norm : (Z, Y, X) float
        RI normalised to [0, 1], on the model's voxel grid (the canonical grid).
    model : torch.nn.Module
        The organelle network (:func:`load_organelle_model`).
    patch_size : (z, y, x), optional
        Tile size (default: :func:`ri2fl.infer.engine.inference_tile`).
    overlap : float
        Tile overlap fraction.
    batch_size : int
        Tiles per forward pass.

    Returns
    -------
    dict
        Target name -> (Z, Y, X) float32 probability.
    """
    from ..infer.engine import inference_tile
    from ..infer.tiling import predict_tiled

    device = next(model.parameters()).device
    patch = inference_tile(model, np.shape(ri_norm), patch_size)

    def fn(batch: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    targets = list(getattr(model, "targets", ORGANELLE_MASKS))
    prob = np.asarray(predict_tiled(fn, np.asarray(ri_norm, np.float32), patch, overlap=overlap,
                                    batch_size=batch_size, n_out=len(targets),
                                    desc="organelle tiles"), np.float32)
    np.clip(prob, 0, 1, out=prob)  # in place: no second copy of every channel
    return {t: prob[i] for i, t in enumerate(targets)}
