"""Saving, verifying and loading model checkpoints.

A checkpoint is a plain dictionary written with :func:`torch.save`::

    {"written_by": "ri2fl 0.1.0", "format_version": 1, "config": {...},
     "state_dict": {...}, "extra": {...}}

``config`` holds everything needed to rebuild and use the network: ``arch`` and ``model``
(constructor keyword arguments), ``targets`` (output channel names in order), ``patch_size``
(z, y, x, the training patch), ``tile_size`` (z, y, x, the inference tile; default the patch),
``voxel_size_um`` (z, y, x), ``task``, ``input_kind``, ``input_norm`` and the
training recipe. Only tensors and plain Python values are stored, so :func:`load` reads it
with ``torch.load(weights_only=True)``, which never executes code from the file.

Shipped weights live in ``ri2fl/models/weights/<name>.pt`` next to a ``<name>.pt.sha256``
sidecar in ``sha256sum`` format (``<hex>  <name>``, then a ``# written by ri2fl`` comment
line); :func:`load` refuses a shipped file whose
checksum does not match.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from .._atomic import atomic_path
from ..constants import CANONICAL_VOXEL_SIZE_UM, TARGETS
from ..errors import InputError, ModelError
from .refine import RefinedUNet3D
from .unet import UNet3D

__all__ = [
    "FORMAT_VERSION", "WEIGHTS_DIR", "available", "build", "load", "read_checkpoint",
    "register_arch",
    "save_checkpoint", "sha256_file", "write_sha256",
]

FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Metadata attached to every loaded model, with their defaults.
_META_DEFAULTS: dict[str, Any] = {
    "targets": list(TARGETS),
    "patch_size": [32, 128, 128],
    "tile_size": None,
    "voxel_size_um": list(CANONICAL_VOXEL_SIZE_UM),
    "task": "ri2fl",
    "input_kind": "ri",
    "input_norm": "ri",
}

_ARCHS: dict[str, Callable[..., nn.Module]] = {"unet3d": UNet3D,
                                                "refined_unet3d": RefinedUNet3D}


def register_arch(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``build`` (and so ``load``) construct ``factory(**config["model"])`` for ``name``.

    Other parts register their own network classes here, e.g. the cell-instance network.
    """
    _ARCHS[name] = factory


def _resolve_arch(arch: str) -> Callable[..., nn.Module]:
    if arch in _ARCHS:
        return _ARCHS[arch]
    # "ri2fl.segment.networks:CellNet": import only from inside the package, never elsewhere
    module_name, _, attr = arch.partition(":")
    if attr and (module_name == "ri2fl" or module_name.startswith("ri2fl.")):
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ModelError(f"unknown architecture {arch!r} ({exc})",
                             hint="update ri2fl") from None
    raise ModelError(f"unknown architecture {arch!r}",
                     hint=f"known: {sorted(_ARCHS)} or 'ri2fl.<module>:<Class>'")


def build(config: dict[str, Any]) -> nn.Module:
    """Build an untrained network from a configuration.

    Parameters
    ----------
    config : dict
        ``arch`` (default ``"unet3d"``) and ``model``, the constructor's keyword arguments.
        If ``model`` has no ``out_channels``, it is the number of ``targets``.

    Examples
    --------
    >>> net = build({"model": {"features": 8, "depth": 3}, "targets": ["nucleus"]})
    >>> net.head.out_channels
    1
    """
    kwargs = dict(config.get("model") or {})
    if "targets" in config and kwargs.get("out_channels") is None:
        kwargs["out_channels"] = len(config["targets"])
    factory = _resolve_arch(str(config.get("arch", "unet3d")))
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ModelError(f"invalid model options {kwargs} ({exc})") from None


def _plain(value: Any) -> Any:
    """Convert tuples, paths and NumPy scalars to plain lists/str/float for a safe pickle."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    return value


def save_checkpoint(path: str | Path, model: nn.Module, config: dict[str, Any],
                    extra: dict[str, Any] | None = None, half: bool = False, *,
                    overwrite: bool = False) -> Path:
    """Write ``model`` and its ``config`` to ``path`` (atomically) in the checkpoint format.

    Parameters
    ----------
    path : str or Path
        Output ``.pt`` file.
    model : nn.Module
        The network (a DDP wrapper is unwrapped).
    config : dict
        See the module docstring; missing metadata get defaults (six targets, canonical voxel
        size, task ``"ri2fl"``, input ``"ri"``).
    extra : dict, optional
        Plain values to keep (e.g. validation metrics, epoch).
    half : bool
        Store floating-point weights as float16 to halve the file (loaded back as float32).
    overwrite : bool
        Replace an existing checkpoint that ri2fl wrote (anything else is never replaced).
    """
    model = getattr(model, "module", model)
    cfg = {**_META_DEFAULTS, **_plain(dict(config))}
    cfg.setdefault("arch", "unet3d")
    state = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
             for k, v in model.state_dict().items()}
    # written_by first: it then lies at the start of the (uncompressed) file, ri2fl's mark
    payload = {"written_by": f"ri2fl {__version__}", "format_version": FORMAT_VERSION,
               "config": cfg, "state_dict": state, "extra": _plain(extra or {})}
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save(payload, tmp)
    return path


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_sha256(path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the ``<path>.sha256`` sidecar that :func:`load` checks for shipped weights.

    ``sha256sum -c`` reads it too (it skips the ``#`` line); ``overwrite`` replaces a
    sidecar ri2fl wrote.
    """
    path = Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    with atomic_path(sidecar, overwrite=overwrite) as tmp:
        tmp.write_text(f"{sha256_file(path)}  {path.name}\n# written by ri2fl {__version__}\n")
    return sidecar


def available() -> list[str]:
    """Names of the weights shipped inside the package, e.g. ``["default"]``."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def _verify(path: Path) -> None:
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.exists():
        raise ModelError("checksum sidecar missing", sidecar,
                         "reinstall ri2fl; shipped weights must come with their .sha256")
    words = sidecar.read_text().split()
    expected = words[0].lower() if words else ""
    actual = sha256_file(path)
    if expected != actual:
        raise ModelError(f"checksum mismatch (expected {expected[:12]}..., got {actual[:12]}...)",
                         path, "the weights are corrupt or were modified; reinstall ri2fl")


def _resolve(name_or_path: str | Path) -> tuple[Path, bool]:
    """Return (file, shipped?) for a shipped name or a path."""
    text = str(name_or_path)
    shipped = WEIGHTS_DIR / f"{text}.pt"
    if "/" not in text and "\\" not in text and not text.endswith(".pt") and shipped.exists():
        return shipped, True
    path = Path(text).expanduser()
    if path.is_dir() and (path / "best.pt").exists():  # a training output folder
        path = path / "best.pt"
    if not path.is_file():
        raise ModelError("no such model", text,
                         f"give a checkpoint file or one of the shipped names {available()}")
    return path, path.resolve().parent == WEIGHTS_DIR


def model_sha256(name_or_path: str | Path) -> str:
    """Hex SHA-256 of the checkpoint file behind a shipped name, a file or a training folder.

    Batch runs fingerprint a model by its bytes, not its name, so that outputs made with
    weights that were since retrained in place are redone.
    """
    return sha256_file(_resolve(name_or_path)[0])


def read_checkpoint(name_or_path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint dictionary without building the network."""
    path, shipped = _resolve(name_or_path)
    if shipped:
        _verify(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelError(f"refused to load: the file holds more than weights ({exc})"[:300], path,
                         "only checkpoints written by ri2fl (save_checkpoint) can be loaded") \
            from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelError(f"not a readable checkpoint ({type(exc).__name__}: {exc})"[:300], path,
                         "the file is truncated or not a PyTorch checkpoint") from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "config" not in payload:
        raise ModelError("not an ri2fl checkpoint (no 'config'/'state_dict')", path,
                         "write checkpoints with ri2fl.models.save_checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelError(f"unsupported checkpoint format_version {version!r}", path,
                         f"this ri2fl reads versions <= {FORMAT_VERSION}; update ri2fl")
    payload["path"] = str(path)
    return payload


def _check_voxel_size(value: Any, path: str) -> tuple[float, float, float]:
    """A checkpoint's grid must be a microscope's: resampling to 1e-4 µm voxels would fill
    the memory before the first tile."""
    from ..io import voxel_size_from

    try:
        return voxel_size_from(value, path)
    except InputError as exc:
        raise ModelError(f"the checkpoint's voxel_size_um: {exc.what}", path,
                         "the config's voxel_size_um must be the (z, y, x) grid in µm the "
                         "network was trained on; fix it or retrain") from None


def load(name_or_path: str | Path = "default", device: str | torch.device = "cpu") -> nn.Module:
    """Load a model in eval mode, with its metadata as attributes.

    Parameters
    ----------
    name_or_path : str or Path
        A shipped name (``"default"``, ``"segment-default"``, ``"cell-default"``, see
        :func:`available`), a checkpoint file, or a training output folder holding ``best.pt``.
    device : str or torch.device
        Where to put the weights.

    Returns
    -------
    nn.Module
        Takes (N, 1, Z, Y, X) input normalised to [0, 1] and returns (N, C, Z, Y, X); has
        attributes ``targets``, ``patch_size`` (z, y, x), ``tile_size`` (z, y, x, the
        inference tile), ``voxel_size_um`` (z, y, x),
        ``task``, ``input_kind`` and ``config``.

    Raises
    ------
    ModelError
        Missing file, failed checksum, corrupt file or a file that would execute code.
    """
    payload = read_checkpoint(name_or_path)
    config = {**_META_DEFAULTS, **payload["config"]}
    voxel_size = _check_voxel_size(config["voxel_size_um"], payload["path"])
    model = build(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"weights do not fit the architecture ({str(exc)[:200]})",
                         payload["path"], "the checkpoint's config and weights disagree") from None
    model.to(device).eval()
    model.config = config
    model.targets = list(config["targets"])
    model.patch_size = tuple(int(v) for v in config["patch_size"])
    model.tile_size = tuple(int(v) for v in config["tile_size"] or config["patch_size"])
    model.voxel_size_um = voxel_size
    model.task = str(config["task"])
    model.input_kind = str(config["input_kind"])
    model.checkpoint_path = payload["path"]
    return model
