"""Networks and checkpoints: the 3D U-Net family, ``build``, ``load`` and ``save_checkpoint``.

>>> from ri2fl.models import load          # doctest: +SKIP
>>> net = load("default")                  # doctest: +SKIP
>>> net.targets                            # doctest: +SKIP
['membrane', 'actin', 'mitochondria', 'lipid_droplets', 'nucleus', 'nucleolus']
"""

from .checkpoint import (
    FORMAT_VERSION,
    WEIGHTS_DIR,
    available,
    build,
    load,
    model_sha256,
    read_checkpoint,
    register_arch,
    save_checkpoint,
    sha256_file,
    write_sha256,
)
from .refine import RefinedUNet3D
from .unet import UNet3D, enable_mc_dropout, n_parameters

__all__ = [
    "FORMAT_VERSION", "WEIGHTS_DIR", "RefinedUNet3D", "UNet3D", "available", "build",
    "enable_mc_dropout", "load",
    "model_sha256", "n_parameters", "read_checkpoint", "register_arch", "save_checkpoint",
    "sha256_file", "write_sha256",
]
