"""Inference: tiled, streamed prediction of fluorescence from RI, with uncertainty.

- :func:`predict_tiled`: the shared tiler (any shape, spline blending, bounded memory);
- :func:`predict_fused`: the same grid and window with every patch's ensemble, network and
  blending in torch on the device (what :func:`predict_volume` runs);
- :func:`predict_volume`: RI on any grid -> :class:`Prediction` (fl, uncertainty maps);
- :func:`predict_file`: any readable file -> OME-Zarr, frame by frame.
"""

from .device import choose_device, choose_precision, make_runner
from .engine import (
    Prediction,
    channel_names,
    inference_tile,
    load_model,
    nonnegative,
    predict_file,
    predict_volume,
    prediction_from_stack,
)
from .fused import FusedPredictor, predict_fused
from .tiling import predict_tiled, spline_window, tile_grid
from .uncertainty import ensemble_fn, mc_dropout, tta_augmentations

__all__ = [
    "FusedPredictor",
    "Prediction",
    "channel_names",
    "choose_device",
    "choose_precision",
    "ensemble_fn",
    "inference_tile",
    "load_model",
    "make_runner",
    "mc_dropout",
    "nonnegative",
    "predict_file",
    "predict_fused",
    "predict_tiled",
    "predict_volume",
    "prediction_from_stack",
    "spline_window",
    "tile_grid",
    "tta_augmentations",
]
