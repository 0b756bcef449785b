"""Training: ``train(config)`` for RI2FL regression, organelle masks and the cell network,
losses, DDP, and ``run_recipe`` (the stage chains that rebuild the shipped models)."""

from .config import DEFAULTS, load_config
from .engine import Trainer, train, validate
from .losses import LOSSES, dice_bce_loss, gdl_loss, get_loss, mse_gdl_loss, sobel3d
from .recipe import load_recipe, run_recipe

__all__ = ["DEFAULTS", "LOSSES", "Trainer", "dice_bce_loss", "gdl_loss", "get_loss",
           "load_config", "load_recipe", "mse_gdl_loss", "run_recipe", "sobel3d", "train",
           "validate"]
