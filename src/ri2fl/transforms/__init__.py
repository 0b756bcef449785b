"""Augmentations of paired (input, target) patches for training."""

from .augment import (
    Compose,
    ElasticDeform,
    GaussianNoise,
    RandomFlip,
    RandomGamma,
    RandomRot90,
    build_augmentation,
)

__all__ = ["Compose", "ElasticDeform", "GaussianNoise", "RandomFlip", "RandomGamma",
           "RandomRot90", "build_augmentation"]
