"""The widgets' compute: infer fluorescence, and segment organelles and cells, on RI data.

Arrays in, layer data tuples out, no napari needed (the dock widgets in ``_qt_widgets.py``
run these in a worker thread). New layers get the RI layer's scale, so they overlay it
exactly; a prediction made from some frames of a time-lapse keeps a time axis placed at those
frames and says which frame it is in its name.

Progress and cancellation go through :class:`RunControl`: every call of a network reports
progress and raises :class:`RunCancelledError` once the user has asked to stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..constants import MEDIUM_INDEX
from ..errors import InputError
from ._layers import LayerData, labels_name, layer_for


class RunCancelledError(Exception):
    """The user stopped the run."""


@dataclass
class RunControl:
    """Progress reports and the cancel request of one run, shared with its worker thread.

    Attributes
    ----------
    report : callable
        ``report(frames_done, frames_total, message)``, called from the worker thread.
    cancel_event : threading.Event
        Set by :meth:`cancel`; the next network call then raises :class:`RunCancelledError`.
    """

    report: Callable[[int, int, str], None] = lambda done, total, message: None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    network_calls: int = 0
    frame: tuple[int, int] = (0, 1)

    def cancel(self) -> None:
        self.cancel_event.set()

    def check(self) -> None:
        """Raise :class:`RunCancelledError` if the user asked to stop."""
        if self.cancel_event.is_set():
            raise RunCancelledError("cancelled by the user")

    def network_call(self, *_: Any) -> None:
        """Forward pre-hook of the networks: one more batch, unless cancelled."""
        self.check()
        self.network_calls += 1
        done, total = self.frame
        frame = f"frame {done + 1}/{total}, " if total > 1 else ""
        self.report(done, total, f"{frame}{self.network_calls} network calls")


@contextmanager
def watched(networks: Sequence[Any], control: RunControl | None) -> Iterator[None]:
    """Report every forward call of ``networks`` to ``control`` (also through the copies
    inference makes of them), and stop them when it is cancelled."""
    if control is None:
        yield
        return

    def hook(*_: Any) -> None:
        # a plain function: inference deep-copies the networks, hooks included, and a bound
        # method would be copied with its RunControl (whose lock cannot be)
        control.network_call()

    handles = [net.register_forward_pre_hook(hook) for net in networks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _spatial_scale(scale: Sequence[float]) -> tuple[float, float, float]:
    voxel = tuple(float(s) for s in scale[-3:])
    if all(v == 1.0 for v in voxel):
        raise InputError("the layer has no physical scale (voxel size 1 x 1 x 1)",
                         hint="open the file with the ri2fl reader, or set the layer's scale "
                              "to the voxel size in µm")
    return voxel


def _frames_of(data: Any, frames: Sequence[int] | None) -> list[int]:
    """The frames to compute: contiguous, within the data's time axis."""
    if getattr(data, "ndim", 0) not in (3, 4):
        raise InputError(f"expected a 3D RI volume (z, y, x) or a time-lapse (t, z, y, x), got "
                         f"{getattr(data, 'ndim', '?')} dimensions",
                         hint="select an RI image layer")
    if data.ndim == 3:
        return [0]
    n = int(data.shape[0])
    chosen = list(range(n)) if frames is None else [int(t) for t in frames]
    if not chosen or any(not 0 <= t < n for t in chosen) or \
            chosen != list(range(chosen[0], chosen[0] + len(chosen))):
        raise InputError(f"frames {chosen} are not a range within 0..{n - 1}")
    return chosen


def _per_frame(compute: Callable[[np.ndarray], dict[str, np.ndarray]], data: Any,
               frames: list[int], control: RunControl | None) -> dict[str, np.ndarray]:
    """``compute`` on each frame, stacked over time (no time axis for a 3D volume)."""
    if data.ndim == 3:
        return compute(np.asarray(data, dtype=np.float32))
    stacks: dict[str, list[np.ndarray]] = {}
    for k, t in enumerate(frames):
        if control is not None:
            control.check()
            control.frame = (k, len(frames))
            control.report(k, len(frames), f"frame {k + 1}/{len(frames)}")
        for channel, arr in compute(np.asarray(data[t], dtype=np.float32)).items():
            stacks.setdefault(channel, []).append(arr)
    return {channel: np.stack(arrs) for channel, arrs in stacks.items()}


def _placement(data: Any, scale: Sequence[float], translate: Sequence[float] | None,
               frames: list[int]) -> tuple[tuple[float, ...], tuple[float, ...], str,
                                           dict[str, Any]]:
    """Scale, translate, name suffix and metadata of the new layers: at the frames computed."""
    scale = tuple(float(s) for s in scale[-data.ndim:])
    translate = tuple(float(t) for t in (translate or (0.0,) * data.ndim)[-data.ndim:])
    if data.ndim == 3:
        return scale, translate, "", {}
    translate = (translate[0] + frames[0] * scale[0], *translate[1:])
    suffix = ""
    if len(frames) == 1:
        suffix = f" t={frames[0]}"
    elif len(frames) < data.shape[0]:
        suffix = f" t={frames[0]}-{frames[-1]}"
    return scale, translate, suffix, {"frames": frames}


def predict_layer(data: Any, scale: Sequence[float], *, model: Any = "default",
                  tta: int = 0, mc: int = 0, medium_index: float = MEDIUM_INDEX,
                  name: str = "ri", device: str | None = None,
                  frames: Sequence[int] | None = None,
                  translate: Sequence[float] | None = None,
                  control: RunControl | None = None) -> list[LayerData]:
    """Inferred fluorescence (and uncertainty) of an RI volume or time-lapse, as layers.

    Parameters
    ----------
    data : array-like
        (Z, Y, X) absolute refractive index, or a (T, Z, Y, X) time-lapse.
    scale : sequence of float
        The RI layer's scale: voxel size in µm (z, y, x), after seconds per frame for a
        time-lapse.
    model, tta, mc, medium_index, device
        As in :func:`ri2fl.infer.predict_volume` (``model``: a shipped name, a checkpoint
        path or a network).
    name : str
        Prefix of the new layer names.
    frames : sequence of int, optional
        Time-lapse only: the contiguous frames to predict (default: all).
    translate : sequence of float, optional
        The RI layer's translate, so that the new layers sit where it does.
    control : RunControl, optional
        Progress reports and cancellation.

    Returns
    -------
    list of (data, kwargs, "image")
        One layer per target, then per uncertainty map, with the same scale; a time-lapse's
        layers have a time axis covering ``frames`` (``metadata["ri2fl"]["frames"]``), and
        their names end in ``t=<frame>`` (or ``t=<first>-<last>``) unless all are covered.
    """
    from ..infer import load_model, predict_volume

    voxel = _spatial_scale(scale)
    chosen = _frames_of(data, frames)
    net = load_model(model, device)

    def compute(ri: np.ndarray) -> dict[str, np.ndarray]:
        pred = predict_volume(ri, voxel, model=net, tta=tta, mc=mc, medium_index=medium_index,
                              device=device)
        return {channel: np.asarray(arr) for channel, arr in pred.channels().items()}

    with watched([net], control):
        channels = _per_frame(compute, data, chosen, control)
    scale, translate, suffix, meta = _placement(data, scale, translate, chosen)
    return [layer_for(arr, channel, scale, f"{name} {channel}{suffix}", meta,
                      translate=translate) for channel, arr in channels.items()]


def _segment_networks(method: str) -> dict[str, Any]:
    """The networks ``segment_volume`` runs for ``method``, loaded once per run."""
    from ..infer import load_model
    from ..models import load
    from ..segment.organelles import load_organelle_model

    nets = {"model": load_organelle_model("segment-default")}
    if method == "network":
        nets["cell_model"] = load("cell-default").eval()
    else:
        nets["fl_model"] = load_model("default")
    return nets


def segment_layer(data: Any, scale: Sequence[float], *, method: str = "network",
                  medium_index: float = MEDIUM_INDEX, name: str = "ri",
                  frames: Sequence[int] | None = None,
                  translate: Sequence[float] | None = None,
                  control: RunControl | None = None) -> list[LayerData]:
    """Organelle masks and cell/nucleus instances of an RI volume, as napari Labels layers.

    Named ``<name> mask: <organelle>``, ``<name> labels: nucleus`` and
    ``<name> labels: cell``; ``frames``, ``translate`` and ``control`` as in
    :func:`predict_layer`.
    """
    from ..segment import segment_volume

    voxel = _spatial_scale(scale)
    chosen = _frames_of(data, frames)
    nets = _segment_networks(method)

    def compute(ri: np.ndarray) -> dict[str, np.ndarray]:
        seg = segment_volume(ri, voxel, medium_index=medium_index, method=method, **nets)
        out = {f"{organelle}_mask": np.asarray(m, dtype=np.uint8)
               for organelle, m in seg.masks.items()}
        return {**out, "nucleus_labels": seg.nucleus_labels, "cell_labels": seg.cell_labels}

    with watched(list(nets.values()), control):
        channels = _per_frame(compute, data, chosen, control)
    scale, translate, suffix, meta = _placement(data, scale, translate, chosen)
    return [layer_for(arr, channel, scale, labels_name(name, channel) + suffix, meta,
                      translate=translate) for channel, arr in channels.items()]
