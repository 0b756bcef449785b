"""The dock widgets: infer fluorescence, and segment organelles and cells, in a worker thread.

Each widget picks an RI image layer, shows typed fields (a dropdown for the method, the medium
index prefilled from the file, bounded TTA / MC passes, a checkpoint picker), runs the compute
of ``_widget.py`` in a worker thread with a progress bar and a Cancel button, and adds the new
layers under names no earlier run uses. This module needs napari and Qt; the compute does not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.qt.threading import FunctionWorker, create_worker
from qtpy.QtCore import QObject, Signal

from ..constants import MEDIUM_INDEX
from ._layers import LayerData
from ._widget import RunCancelledError, RunControl, predict_layer, segment_layer

if TYPE_CHECKING:
    import napari

#: Medium index field: range, step and decimals (1.337 must show as 1.3370, not 1.34).
MEDIUM_RANGE = (1.30, 1.60)
MEDIUM_STEP = 0.001
MEDIUM_DECIMALS = 4
#: Most TTA / MC-dropout passes the widget offers (each pass is one more inference).
MAX_PASSES = 16
FRAME_ON_SCREEN = "frame on screen"
ALL_FRAMES = "all frames"


class _ProgressRelay(QObject):
    """Carries progress reports from the worker thread to the widget (Qt queues them)."""

    progress = Signal(int, int, str)


def current_frame(layer: Any, viewer: Any) -> int:
    """Index of the frame of a time-lapse layer that the viewer shows."""
    point = viewer.dims.point[-layer.ndim]
    translate = layer.translate[0] if len(layer.translate) else 0.0
    t = round((float(point) - float(translate)) / float(layer.scale[0]))
    return min(max(t, 0), int(layer.data.shape[0]) - 1)


def unique_run_names(layers: list[LayerData], taken: set[str]) -> list[LayerData]:
    """The layers of one run, renamed ``... (run N)`` with the first N none of whose names is
    taken, so that a new run never replaces or shadows an earlier run's layers."""
    names = [kwargs["name"] for _, kwargs, _ in layers]
    run, suffix = 1, ""
    while any(f"{n}{suffix}" in taken for n in names):
        run += 1
        suffix = f" (run {run})"
    return [(data, {**kwargs, "name": f"{kwargs['name']}{suffix}"}, kind)
            for data, kwargs, kind in layers]


def _medium_field() -> FloatSpinBox:
    field = FloatSpinBox(label="medium index", min=MEDIUM_RANGE[0], max=MEDIUM_RANGE[1],
                         step=MEDIUM_STEP, value=MEDIUM_INDEX,
                         tooltip="refractive index of the medium; taken from the file when "
                                 "it says")
    field.native.setDecimals(MEDIUM_DECIMALS)
    field.value = MEDIUM_INDEX
    return field


class _RunWidget(Container):
    """A layer picker, the fields of a subclass, Run / Cancel, a progress bar and a status."""

    #: Verb of the Run button, and the status line while it runs.
    action = "run"
    doing = "running"

    def __init__(self, napari_viewer: napari.viewer.Viewer,
                 fields: list[Any]) -> None:
        self.viewer = napari_viewer
        self.image = ComboBox(label="RI layer", choices=self._image_choices)
        self.frames = ComboBox(label="frames", choices=[FRAME_ON_SCREEN, ALL_FRAMES],
                               tooltip="time-lapses: the frame on screen, or every frame")
        self.medium_index = _medium_field()
        self.run_button = PushButton(text=self.action.capitalize())
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0)
        self.status = Label(value="")
        super().__init__(widgets=[self.image, self.frames, self.medium_index, *fields,
                                  self.run_button, self.cancel_button, self.progress,
                                  self.status])
        self.worker: FunctionWorker | None = None
        self.control: RunControl | None = None
        self._relay = _ProgressRelay()
        self._relay.progress.connect(self._show_progress)
        self.image.changed.connect(self._layer_chosen)
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        for event in (napari_viewer.layers.events.inserted,
                      napari_viewer.layers.events.removed):
            event.connect(self._refresh_layers)
        self._layer_chosen(self.image.value)

    # ---------------------------------------------------------------- fields
    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _refresh_layers(self, _event: Any = None) -> None:
        self.image.reset_choices()

    def _layer_chosen(self, layer: Image | None) -> None:
        """Prefill the medium index from the file; offer frames for time-lapses only."""
        self.frames.enabled = layer is not None and layer.ndim == 4
        medium = ((getattr(layer, "metadata", None) or {}).get("ri2fl", {})
                  .get("medium_index") if layer is not None else None)
        if medium is not None and MEDIUM_RANGE[0] <= medium <= MEDIUM_RANGE[1]:
            self.medium_index.value = float(medium)

    def _chosen_frames(self, layer: Image) -> list[int] | None:
        if layer.ndim != 4 or self.frames.value == ALL_FRAMES:
            return None
        return [current_frame(layer, self.viewer)]

    # ------------------------------------------------------------------- run
    def compute(self, layer: Image, frames: list[int] | None,
                control: RunControl) -> Callable[[], list[LayerData]]:
        """The work of one run, as a function of no arguments (run in the worker)."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self, _value: Any = None) -> FunctionWorker | None:
        """Start a run on the chosen layer in a worker thread (the window stays live)."""
        layer = self.image.value
        if layer is None or self.running:
            self.status.value = "" if self.running else "open or choose an RI image layer"
            return None
        self.control = RunControl(report=self._relay.progress.emit)
        work = self.compute(layer, self._chosen_frames(layer), self.control)
        self.worker = create_worker(work, _ignore_errors=True)
        self.worker.returned.connect(self._add_layers)
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(self._finished)
        self._set_running(True)
        self.status.value = f"{self.doing} {layer.name}..."
        self.worker.start()
        return self.worker

    def cancel(self, _value: Any = None) -> None:
        """Stop the run at the next network call; its layers are not added."""
        if self.control is not None:
            self.control.cancel()
            self.status.value = "cancelling..."

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running
        self.progress.max = 0 if running else 1  # busy indicator until frames are counted
        self.progress.value = 0

    def _show_progress(self, done: int, total: int, message: str) -> None:
        if total > 1:
            self.progress.max, self.progress.value = total, done
        self.status.value = message

    def _add_layers(self, layers: list[LayerData]) -> None:
        layers = unique_run_names(layers, {layer.name for layer in self.viewer.layers})
        for data, kwargs, kind in layers:
            getattr(self.viewer, f"add_{kind}")(data, **kwargs)
        self.status.value = f"added {len(layers)} layers"

    def _failed(self, error: BaseException) -> None:
        self.status.value = ("cancelled" if isinstance(error, RunCancelledError)
                             else f"failed: {error}")

    def _finished(self) -> None:
        self.worker = None
        self._set_running(False)


class PredictWidget(_RunWidget):
    """Infer the six fluorescence channels (with uncertainty when TTA / MC > 0) of an RI layer.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose RI layers the widget offers and to which it adds the results.
    """

    action = "predict"
    doing = "predicting"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        from ..models import available

        shipped = [m for m in available() if m not in ("segment-default", "cell-default")]
        self.model = ComboBox(label="model", choices=shipped or ["default"],
                              tooltip="a model shipped with ri2fl")
        self.checkpoint = FileEdit(label="checkpoint", mode="r", filter="*.pt",
                                   tooltip="a checkpoint of yours (overrides the model)")
        self.tta = SpinBox(label="TTA passes", min=0, max=MAX_PASSES, value=0,
                           tooltip="test-time augmentation passes (0: off; else at least 2)")
        self.mc = SpinBox(label="MC passes", min=0, max=MAX_PASSES, value=0,
                          tooltip="MC-dropout passes (0: off; else at least 2)")
        super().__init__(napari_viewer, [self.model, self.checkpoint, self.tta, self.mc])

    def chosen_model(self) -> str:
        """The checkpoint file when one is picked, else the shipped model's name."""
        path = self.checkpoint.value
        if path is not None and str(path) not in ("", ".") and Path(path).is_file():
            return str(path)
        return str(self.model.value)

    def compute(self, layer: Image, frames: list[int] | None,
                control: RunControl) -> Callable[[], list[LayerData]]:
        kwargs = {"model": self.chosen_model(), "tta": _passes(self.tta.value),
                  "mc": _passes(self.mc.value), "medium_index": float(self.medium_index.value),
                  "name": layer.name, "frames": frames, "translate": tuple(layer.translate),
                  "control": control}
        data, scale = layer.data, tuple(layer.scale)
        return lambda: predict_layer(data, scale, **kwargs)


class SegmentWidget(_RunWidget):
    """Segment nucleus, nucleolus, cell and lipid droplets, and split cells, in an RI layer.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose RI layers the widget offers and to which it adds the results.
    """

    action = "segment"
    doing = "segmenting"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        from ..segment.api import METHODS

        self.method = ComboBox(label="method", choices=list(METHODS),
                               tooltip="network: nucleus-conditioned cell network; watershed: "
                                       "voxel classifier + seeded watershed")
        super().__init__(napari_viewer, [self.method])

    def compute(self, layer: Image, frames: list[int] | None,
                control: RunControl) -> Callable[[], list[LayerData]]:
        kwargs = {"method": str(self.method.value),
                  "medium_index": float(self.medium_index.value), "name": layer.name,
                  "frames": frames, "translate": tuple(layer.translate), "control": control}
        data, scale = layer.data, tuple(layer.scale)
        return lambda: segment_layer(data, scale, **kwargs)


def _passes(n: int) -> int:
    """0 (off) or at least 2: one pass has no spread to measure."""
    return 0 if n <= 0 else max(2, min(int(n), MAX_PASSES))


__all__ = ["MAX_PASSES", "MEDIUM_DECIMALS", "PredictWidget", "SegmentWidget", "current_frame",
           "unique_run_names"]
