"""Typed schema of a training configuration: unknown keys and wrong types are one-line errors.

The defaults live in :data:`ri2fl.train.config.DEFAULTS`; the models here only say which keys
exist and what type each takes, so a partial mapping (a user's YAML) validates as well as a
complete one. Every field defaults to ``None`` (a key not given), and a given value is checked.

>>> check_options({"epochs": "ten"})   # doctest: +SKIP
ConfigError: option 'epochs': Input should be a valid integer (got 'ten')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError

__all__ = ["TrainOptions", "check_options", "raise_config_error"]

Task = Literal["ri2fl", "organelle_seg", "cell_seg", "bf2fl", "dic2fl"]
PathLike = str | Path


class _Section(BaseModel):
    """A mapping that refuses keys it does not declare."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class DataOptions(_Section):
    """The ``data`` section (see ``DEFAULTS["data"]``)."""

    path: PathLike | None = None
    train_split: str | list[str] | None = None
    val_split: str | None = None
    cell_types: list[str] | None = None
    val_fraction: float | None = None
    medium_index: float | None = None
    foreground_p: float | None = None
    empty_p: float | None = None
    sampling: Literal["voxels", "structures"] | None = None
    threshold: float | None = None
    max_files: int | None = None
    cache_dtype: Literal["float32", "float16"] | None = None
    fl_scale: float | None = None
    channel_map: dict[str, str] | None = None
    load_workers: int | None = None
    membrane: str | None = None


class UNetOptions(_Section):
    """``model`` of ``arch: unet3d`` (:class:`ri2fl.models.UNet3D`)."""

    in_channels: int | None = None
    out_channels: int | None = None
    features: int | None = None
    depth: int | None = None
    multiplier: float | None = None
    dropout: float | None = None
    z_pool_levels: int | None = None
    final_activation: Literal["sigmoid", "softplus", "none"] | None = None


class RefinedOptions(_Section):
    """``model`` of ``arch: refined_unet3d`` (:class:`ri2fl.models.RefinedUNet3D`)."""

    in_channels: int | None = None
    out_channels: int | None = None
    base: dict[str, Any] | None = None
    scale: list[int] | None = None
    refine_channels: list[int] | None = None
    features: int | None = None
    layers: int | None = None
    dropout: float | None = None
    freeze_base: bool | None = None


class OptimizerOptions(_Section):
    lr: float | None = None
    weight_decay: float | None = None


class SchedulerOptions(_Section):
    factor: float | None = None
    patience: int | None = None
    min_lr: float | None = None


class AugmentOptions(_Section):
    flip: bool | None = None
    rot90: bool | None = None
    elastic: float | None = None
    elastic_magnitude: float | None = None
    gamma: list[float] | None = None
    noise: float | None = None


class TrainOptions(_Section):
    """Every top-level option of a training configuration (``DEFAULTS``)."""

    task: Task | None = None
    input_kind: Literal["ri", "bf", "dic"] | None = None
    targets: list[str] | None = None
    data: DataOptions | None = None
    arch: str | None = None
    model: dict[str, Any] | None = None
    patch_size: list[int] | None = None
    tile_size: list[int] | None = None
    voxel_size_um: list[float] | None = None
    batch_size: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    val_patches: int | None = None
    loss: str | None = None
    loss_options: dict[str, Any] | None = None
    metric: Literal["pcc", "dice"] | None = None
    optimizer: OptimizerOptions | None = None
    scheduler: SchedulerOptions | None = None
    augment: AugmentOptions | None = None
    rescale: list[float] | None = None
    out: PathLike | None = None
    device: str | None = None
    bf16: bool | None = None
    num_threads: int | None = None
    num_workers: int | None = None
    seed: int | None = None
    max_minutes: float | None = None
    finetune: PathLike | None = None
    tensorboard: bool | None = None
    half_checkpoint: bool | None = None


#: Typed ``model`` sections by architecture; another architecture takes its options as given.
MODEL_SCHEMAS: dict[str, type[_Section]] = {"unet3d": UNetOptions,
                                            "refined_unet3d": RefinedOptions}


def raise_config_error(exc: ValidationError, schema: type[BaseModel],
                       where: str | Path | None, prefix: str = "") -> None:
    """Re-raise the first problem of a pydantic ``ValidationError`` as one-line ConfigError."""
    error = exc.errors()[0]
    loc = _field_path(schema, [str(p) for p in error["loc"] if not isinstance(p, int)])
    key = prefix + ".".join(loc)
    if error["type"] == "extra_forbidden":
        section = _section(schema, loc[:-1])
        known = sorted(section.model_fields) if section else []
        raise ConfigError(f"unknown option {key!r}", where, f"known: {known}") from None
    message = error["msg"].split("\n")[0]
    got = repr(error.get("input"))[:60]
    raise ConfigError(f"option {key!r}: {message} (got {got})", where) from None


def _field_path(schema: type[BaseModel], loc: list[str]) -> list[str]:
    """The option names of an error location, without pydantic's union-member tags."""
    out: list[str] = []
    for part in loc:
        section = _section(schema, out)
        if section is None:
            break  # inside a plain value: the rest are tags such as 'str' or 'list[str]'
        out.append(part)
    return out


def _section(schema: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    """The nested model a location points into (for the list of known keys)."""
    for name in path:
        field = schema.model_fields.get(name)
        if field is None:
            return None
        candidates = [a for a in getattr(field.annotation, "__args__", (field.annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return None
        schema = candidates[0]
    return schema


def check_options(options: dict[str, Any], where: str | Path | None = None) -> None:
    """Check a (partial) training configuration's keys and value types.

    Parameters
    ----------
    options : dict
        Options as a user wrote them (a YAML file's mapping), or a complete configuration.
    where : str or Path, optional
        The file the options come from, named in the error.

    Raises
    ------
    ConfigError
        For the first unknown key (``unknown option 'data.sampels'``) or value of the wrong
        type (``option 'epochs': Input should be a valid integer``), as one line.
    """
    try:
        TrainOptions.model_validate(options)
    except ValidationError as exc:
        raise_config_error(exc, TrainOptions, where)
    model = options.get("model")
    schema = MODEL_SCHEMAS.get(str(options.get("arch") or "unet3d"))
    if schema is not None and model:
        try:
            schema.model_validate(model)
        except ValidationError as exc:
            raise_config_error(exc, schema, where, prefix="model.")
