"""Training: ``train(config)`` for RI2FL regression and mask segmentation, losses, DDP."""

from .config import DEFAULTS, load_config
from .engine import Trainer, train, validate
from .losses import LOSSES, dice_bce_loss, gdl_loss, get_loss, mse_gdl_loss, sobel3d

__all__ = ["DEFAULTS", "LOSSES", "Trainer", "dice_bce_loss", "gdl_loss", "get_loss",
           "load_config", "mse_gdl_loss", "sobel3d", "train", "validate"]
