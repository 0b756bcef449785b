"""The in-memory description of one tomogram (or time-lapse, or channel stack)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

VALID_AXES = ("zyx", "czyx", "tzyx", "tczyx")


@dataclass
class Volume:
    """A volume with its physical metadata.

    Attributes
    ----------
    data : array-like
        float32 values. Axes are given by ``axes``: ``"zyx"`` for one tomogram,
        ``"czyx"`` for channels (fluorescence), ``"tzyx"`` / ``"tczyx"`` for time-lapses.
        For multi-frame files ``data`` may be a lazy dask array: index it (or use
        :meth:`frame`) to load one frame only.
    voxel_size_um : tuple of float
        Physical voxel size (z, y, x) in micrometres.
    axes : str
        One of ``"zyx"``, ``"czyx"``, ``"tzyx"``, ``"tczyx"``.
    channel_names : list of str
        One name per channel (``["ri"]`` for a refractive-index volume).
    medium_index : float or None
        Refractive index of the medium, when known.
    time_interval_s : float or None
        Seconds between frames, when known.
    metadata : dict
        Source metadata (file attributes, format version, ...).
    """

    data: Any
    voxel_size_um: tuple[float, float, float]
    axes: str = "zyx"
    channel_names: list[str] = field(default_factory=lambda: ["ri"])
    medium_index: float | None = None
    time_interval_s: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.axes not in VALID_AXES:
            raise ValueError(f"axes must be one of {VALID_AXES}, got {self.axes!r}")
        if len(self.data.shape) != len(self.axes):
            raise ValueError(f"data has {len(self.data.shape)} dims but axes is {self.axes!r}")
        self.voxel_size_um = tuple(float(v) for v in self.voxel_size_um)

    def __repr__(self) -> str:  # the data's summary, never its values
        lazy = "" if isinstance(self.data, np.ndarray) else ", lazy"
        vz, vy, vx = self.voxel_size_um
        return (f"Volume(axes={self.axes!r}, shape={self.shape}{lazy}, "
                f"voxel_size_um=({vz:g}, {vy:g}, {vx:g}), channels={self.channel_names}, "
                f"medium_index={self.medium_index}, format={self.metadata.get('format')!r})")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """(z, y, x) shape of one frame of one channel."""
        return tuple(self.data.shape[-3:])

    @property
    def time_points(self) -> int:
        return int(self.data.shape[0]) if self.axes.startswith("t") else 1

    def frame(self, t: int = 0) -> Volume:
        """The volume at time point ``t``, loaded into memory as float32."""
        data = self.data[t] if self.axes.startswith("t") else self.data
        return replace(self, data=np.asarray(data, dtype=np.float32), axes=self.axes.lstrip("t"))

    def channel(self, name_or_index: str | int) -> Volume:
        """One channel as a ``zyx`` (or ``tzyx``) volume; lazy data stay lazy."""
        if "c" not in self.axes:
            return self
        if isinstance(name_or_index, str):
            if name_or_index not in self.channel_names:
                from ..errors import InputError
                raise InputError(f"no channel {name_or_index!r} (has {self.channel_names})")
            idx = self.channel_names.index(name_or_index)
        else:
            idx = int(name_or_index)
        index = [slice(None)] * len(self.axes)
        index[self.axes.index("c")] = idx
        data = self.data[tuple(index)]
        if isinstance(data, np.ndarray) or not hasattr(data, "compute"):
            data = np.asarray(data, dtype=np.float32)
        return replace(self, data=data, axes=self.axes.replace("c", ""),
                       channel_names=[self.channel_names[idx]])
