"""The plugin in napari as a user meets it: files opened without naming the plugin, layers
with physical scale and units, widgets that run in a worker thread.

Headless: Qt's offscreen platform, a ``napari.Viewer(show=False)`` where OpenGL works (a
desktop, CI under xvfb), else napari's ``ViewerModel``, the model ``napari.Viewer`` is built
on (the same ``open``, reader choice, layers and dims, without a canvas). napari's settings
go to a temporary file, never the user's. Skipped where napari or a Qt binding is missing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is first imported

import h5py
import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("qtpy.QtWidgets", exc_type=ImportError)  # a Qt binding

from napari.components import ViewerModel  # noqa: E402
from napari.errors import MultipleReaderError  # noqa: E402

from ri2fl.io import write_ome_zarr  # noqa: E402
from ri2fl.io.tcf import write_tcf  # noqa: E402
from ri2fl.napari import prefer_ri2fl_reader  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection:UserWarning")

VOXEL = (0.2, 0.15, 0.15)
MEDIUM = 1.335
#: Longest wait for a widget's run (tiny volumes and networks: a few seconds at most).
RUN_TIMEOUT_S = 60


def ri_volume(shape=(8, 24, 24), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1.337 + 0.02 * rng.random(shape)).astype(np.float32)


def write_ri_h5(path: Path, data: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("ri", data=data)
        f.attrs["voxel_size_um"] = VOXEL
        f.attrs["medium_index"] = MEDIUM
    return path


def units(layer) -> tuple[str, ...]:
    return tuple(str(u) for u in layer.units)


@pytest.fixture
def qapp():
    from napari.qt import get_qapp

    return get_qapp()


@pytest.fixture
def napari_settings(tmp_path, monkeypatch):
    """napari's settings in a temporary file (reader preferences are saved there)."""
    import napari.settings

    monkeypatch.setattr(napari.settings, "_SETTINGS", None)
    return napari.settings.get_settings(tmp_path / "napari-settings.yaml")


def _opengl_works() -> bool:
    try:
        from napari._vispy.utils.gl import get_gl_extensions

        return bool(get_gl_extensions())
    except Exception:  # no display or no OpenGL: napari's canvas cannot draw
        return False


@pytest.fixture
def viewer(qapp, napari_settings):
    """A napari viewer with the installed plugins discovered, as ``napari`` starts one."""
    from napari.plugins import _initialize_plugins

    _initialize_plugins()
    view = napari.Viewer(show=False) if _opengl_works() else ViewerModel()
    yield view
    if isinstance(view, napari.Viewer):
        view.close()


def wait_for(widget, qapp) -> None:
    """Let Qt deliver the worker's signals until the widget's run is over."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while widget.running and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.01)
    qapp.processEvents()
    assert not widget.running, f"the run did not finish in {RUN_TIMEOUT_S} s"


def test_a_tcf_time_lapse_opens_without_naming_the_plugin(viewer, tmp_path):
    frames = np.stack([ri_volume(seed=s) for s in range(3)])
    counts = (np.arange(3 * 4 * 12 * 12).reshape(3, 4, 12, 12) % 200).astype(np.uint16)
    path = write_tcf(tmp_path / "movie.TCF", frames, VOXEL, time_interval_s=30.0,
                     fl={"GFP": counts}, fl_voxel_size_um=(0.4, 0.3, 0.3))
    ri, gfp = viewer.open(str(path), plugin=None)  # as `napari movie.TCF` and drag and drop
    assert (ri.name, gfp.name) == ("movie", "movie fluorescence GFP")
    assert type(ri).__name__ == type(gfp).__name__ == "Image"
    assert tuple(ri.scale) == pytest.approx((30.0, *VOXEL))
    assert units(ri) == ("second", "micrometer", "micrometer", "micrometer")
    assert tuple(ri.axis_labels) == ("t", "z", "y", "x")
    assert gfp.data.shape == (3, 4, 12, 12)
    assert tuple(gfp.scale) == pytest.approx((30.0, 0.4, 0.3, 0.3))
    assert gfp.contrast_limits[1] > 100  # raw counts: contrast from the data, not 0-1


def test_h5_and_ome_zarr_open_with_ri2fl_once_it_is_the_preferred_reader(viewer, tmp_path,
                                                                        hl60_path, qapp):
    from napari._qt.dialogs.qt_reader_dialog import QtReaderDialog
    from napari.plugins._npe2 import get_readers

    store = tmp_path / "cell.ome.zarr"
    channels = np.zeros((3, 6, 16, 16), np.float32)
    channels[0, :, 4:12, 4:12] = 0.05  # a dim channel
    channels[2, :, 4:12, 4:12] = 0.02  # and its uncertainty
    write_ome_zarr(store, channels, VOXEL,
                   channel_names=["membrane", "nucleus", "membrane_uncertainty_data"])
    # napari's builtins also claim .h5 and .zarr: napari asks, and ri2fl is preselected
    with pytest.raises(MultipleReaderError) as asked:
        viewer.open(str(hl60_path), plugin=None)
    assert "ri2fl" in asked.value.available_plugins
    dialog = QtReaderDialog(pth=str(hl60_path), readers=get_readers(str(hl60_path)))
    assert dialog._get_plugin_choice() == "RI2FL"
    dialog.deleteLater()

    assert "*.h5" in prefer_ri2fl_reader()
    [cell] = viewer.open(str(hl60_path), plugin=None)
    assert cell.name == "hl60_ri" and type(cell).__name__ == "Image"
    assert tuple(cell.scale) == pytest.approx((0.139,) * 3, abs=1e-3)
    assert units(cell) == ("micrometer",) * 3
    membrane, nucleus, uncertainty = viewer.open(str(store), plugin=None)
    assert [layer.name for layer in (membrane, nucleus, uncertainty)] == [
        "cell membrane", "cell nucleus", "cell membrane_uncertainty_data"]
    assert tuple(membrane.scale) == pytest.approx(VOXEL)
    assert membrane.contrast_limits[1] == pytest.approx(0.05, abs=1e-3)
    assert uncertainty.contrast_limits[1] == pytest.approx(0.02, abs=1e-3)


def test_segmentation_masks_open_as_named_labels(viewer, tmp_path, napari_settings):
    prefer_ri2fl_reader()
    stack = np.zeros((3, 4, 8, 8), np.int32)
    stack[0, 1:3, 2:6, 2:6] = 1
    stack[2, 1:2, 3:5, 3:5] = 1
    path = write_ome_zarr(tmp_path / "seg.ome.zarr", stack, VOXEL,
                          channel_names=["cell_labels", "nucleus_labels", "nucleus"])
    layers = viewer.open(str(path), plugin=None)
    assert [layer.name for layer in layers] == ["seg labels: cell", "seg labels: nucleus",
                                                "seg mask: nucleus"]
    assert {type(layer).__name__ for layer in layers} == {"Labels"}
    assert units(layers[0]) == ("micrometer",) * 3


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    """A small untrained network saved as a checkpoint, to pick in the widget."""
    from ri2fl.models import build, save_checkpoint

    config = {"model": {"features": 4, "depth": 2}, "targets": ["membrane", "nucleus"],
              "voxel_size_um": list(VOXEL)}
    return save_checkpoint(tmp_path / "tiny.pt", build(config), config)


def test_predict_widget_runs_in_a_worker_and_never_overwrites(viewer, qapp, tmp_path,
                                                              tiny_checkpoint):
    from ri2fl.napari._qt_widgets import MAX_PASSES, PredictWidget

    [ri] = viewer.open(str(write_ri_h5(tmp_path / "cell.h5", ri_volume())), plugin="ri2fl")
    widget = PredictWidget(viewer)
    assert widget.image.value is ri
    assert widget.medium_index.value == pytest.approx(MEDIUM)  # the file's own value
    assert widget.medium_index.native.text() == "1.3350"
    assert (widget.tta.max, widget.mc.max) == (MAX_PASSES, MAX_PASSES)
    widget.checkpoint.value = tiny_checkpoint

    assert widget.start() is not None
    assert widget.running and len(viewer.layers) == 1  # returned at once: work is elsewhere
    wait_for(widget, qapp)
    assert widget.status.value == "added 2 layers"
    membrane = viewer.layers["cell membrane"]
    assert type(membrane).__name__ == "Image"
    assert tuple(membrane.scale) == pytest.approx(VOXEL)
    assert units(membrane) == ("micrometer",) * 3

    widget.start()
    wait_for(widget, qapp)
    assert [layer.name for layer in viewer.layers] == [
        "cell", "cell membrane", "cell nucleus",
        "cell membrane (run 2)", "cell nucleus (run 2)"]
    assert viewer.layers["cell membrane"] is membrane  # the first run's layer is untouched


def test_a_cancelled_run_adds_nothing(viewer, qapp, tmp_path, tiny_checkpoint):
    from ri2fl.napari._qt_widgets import MAX_PASSES, PredictWidget

    viewer.open(str(write_ri_h5(tmp_path / "cell.h5", ri_volume((16, 48, 48)))),
                plugin="ri2fl")
    widget = PredictWidget(viewer)
    widget.checkpoint.value = tiny_checkpoint
    widget.tta.value = widget.mc.value = MAX_PASSES  # hundreds of network calls
    widget.start()
    widget.cancel()
    wait_for(widget, qapp)
    assert widget.status.value == "cancelled"
    assert [layer.name for layer in viewer.layers] == ["cell"]
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_segment_widget_offers_the_methods_and_adds_named_masks(viewer, qapp, tmp_path):
    from ri2fl.napari._qt_widgets import SegmentWidget

    viewer.open(str(write_ri_h5(tmp_path / "cell.h5", ri_volume((16, 32, 32)))),
                plugin="ri2fl")
    widget = SegmentWidget(viewer)
    assert list(widget.method.choices) == ["network", "watershed"]
    widget.start()
    wait_for(widget, qapp)
    names = {layer.name: type(layer).__name__ for layer in viewer.layers}
    assert names["cell mask: nucleus"] == names["cell labels: cell"] == "Labels"
    assert tuple(viewer.layers["cell labels: cell"].scale) == pytest.approx(VOXEL)
