"""The napari plugin, headless: manifest, reader layers (scale, names), widget compute."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ri2fl.napari import RunCancelledError, RunControl, get_reader, predict_layer, read_layers

VOXEL = (0.2, 0.15, 0.15)


def npe2_command() -> list[str]:
    exe = Path(sys.executable).with_name("npe2")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("npe2")
    if not found:
        pytest.skip("npe2 command not installed")
    return [found]


def napari_and_qt() -> bool:
    try:
        import qtpy.QtWidgets  # noqa: F401  (a Qt binding, not only its shim)

        import napari  # noqa: F401
    except ImportError:
        return False
    return True


def test_npe2_validates_the_manifest_and_its_imports():
    # the dock widgets import napari and Qt: their imports are checked where both are
    for extra in ([], ["--imports"]) if napari_and_qt() else ([],):
        result = subprocess.run([*npe2_command(), "validate", *extra, "ri2fl"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "valid" in result.stdout


def write_ri_h5(path: Path, data: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("ri", data=data)
        f.attrs["voxel_size_um"] = VOXEL
        f.attrs["medium_index"] = 1.335
    return path


def ri_volume(shape=(8, 24, 24), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1.337 + 0.02 * rng.random(shape)).astype(np.float32)


def test_reader_opens_hdf5_ri_with_physical_scale(tmp_path):
    path = write_ri_h5(tmp_path / "cell.h5", ri_volume())
    reader = get_reader(str(path))
    assert reader is not None
    [(data, kwargs, kind)] = reader(str(path))
    assert kind == "image" and kwargs["name"] == "cell"
    assert kwargs["scale"] == pytest.approx(VOXEL)
    assert kwargs["colormap"] == "gray"
    assert kwargs["metadata"]["ri2fl"]["medium_index"] == pytest.approx(1.335)
    np.testing.assert_allclose(np.asarray(data), ri_volume(), atol=1e-6)


def test_reader_splits_our_ome_zarr_outputs_into_named_channels(tmp_path):
    io = pytest.importorskip("ri2fl.io")
    data = np.zeros((4, 6, 16, 16), np.float32)
    data[0] = 0.5
    data[3, 2:4, 4:8, 4:8] = 2  # cell 2
    names = ["membrane", "nucleus", "membrane_uncertainty_data", "cell_labels"]
    path = io.write_ome_zarr(tmp_path / "cell.ome.zarr", data, VOXEL, channel_names=names)
    layers = read_layers(path)
    assert [k["name"] for _, k, _ in layers] == ["cell membrane", "cell nucleus",
                                                 "cell membrane_uncertainty_data",
                                                 "cell labels: cell"]
    assert [t for _, _, t in layers] == ["image", "image", "image", "labels"]
    for arr, kwargs, _ in layers:
        assert kwargs["scale"] == pytest.approx(VOXEL)
        assert arr.shape == (6, 16, 16)
    assert layers[0][1]["colormap"] == "magenta" and layers[1][1]["colormap"] == "cyan"
    assert layers[2][1]["colormap"] == "inferno"
    # contrast from the layer's own values, not a fixed 0-1: a flat 0.5 is not near-black
    assert layers[0][1]["contrast_limits"][1] <= 0.51
    assert layers[0][1]["units"] == ("µm",) * 3
    assert layers[0][1]["axis_labels"] == ("z", "y", "x")
    labels = np.asarray(layers[3][0])
    assert np.issubdtype(labels.dtype, np.integer) and set(np.unique(labels)) == {0, 2}
    np.testing.assert_array_equal(np.asarray(layers[0][0]), 0.5)


def test_reader_opens_tcf_time_lapses_lazily_with_a_time_axis(tmp_path):
    tcf = pytest.importorskip("ri2fl.io.tcf")
    frames = np.stack([ri_volume(seed=s) for s in range(3)])
    counts = np.stack([np.full((4, 12, 12), 10 * (s + 1), np.uint16) for s in range(3)])
    path = tcf.write_tcf(tmp_path / "movie.TCF", frames, VOXEL, time_interval_s=30.0,
                         fl={"GFP": counts}, fl_voxel_size_um=(0.4, 0.3, 0.3),
                         fl_offset_z_um=0.6)
    [(data, kwargs, kind), (fl, fl_kwargs, fl_kind)] = get_reader(str(path))(str(path))
    assert kind == "image" and kwargs["name"] == "movie"
    assert data.shape == (3, 8, 24, 24)
    assert kwargs["scale"] == pytest.approx((30.0, *VOXEL))  # seconds per frame, then µm
    assert kwargs["units"] == ("s", "µm", "µm", "µm")
    assert kwargs["axis_labels"] == ("t", "z", "y", "x")
    np.testing.assert_allclose(np.asarray(data[2]), frames[2], atol=1e-4)
    # the measured fluorescence: its own grid, placed in RI coordinates, frame by frame
    assert fl_kind == "image" and fl_kwargs["name"] == "movie fluorescence GFP"
    assert fl.shape == (3, 4, 12, 12)
    assert fl_kwargs["scale"] == pytest.approx((30.0, 0.4, 0.3, 0.3))
    assert fl_kwargs["translate"] == pytest.approx((0.0, 0.6, 0.0, 0.0))
    np.testing.assert_allclose(np.asarray(fl[1]), 20)


def test_reader_declines_files_that_are_not_ours(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.h5").write_bytes(b"not hdf5 at all")
    with h5py.File(tmp_path / "table.h5", "w") as f:  # HDF5, but no volume ri2fl reads
        f.create_dataset("counts", data=np.arange(10))
    (tmp_path / "plain.zarr").mkdir()
    for name in ("notes.txt", "fake.h5", "table.h5", "plain.zarr"):
        assert get_reader(str(tmp_path / name)) is None, name


def test_npe2_routes_files_to_our_reader(tmp_path):
    npe2 = pytest.importorskip("npe2")
    path = write_ri_h5(tmp_path / "cell.h5", ri_volume())
    pm = npe2.PluginManager.instance()
    pm.discover()
    readers = [r.command for r in pm.iter_compatible_readers([str(path)])]
    assert "ri2fl.get_reader" in readers
    layers = npe2.read([str(path)], stack=False, plugin_name="ri2fl")
    assert layers[0][1]["scale"] == pytest.approx(VOXEL)


class TinyNet:
    """A stand-in network: fixed per-target linear maps of the normalised RI."""

    def __new__(cls):
        torch = pytest.importorskip("torch")
        net = torch.nn.Conv3d(1, 2, kernel_size=1)
        with torch.no_grad():
            net.weight[:] = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1, 1)
            net.bias[:] = torch.tensor([0.0, 1.0])
        net.targets = ["membrane", "nucleus"]
        net.patch_size = (8, 16, 16)
        net.voxel_size_um = VOXEL
        return net.eval()


def test_predict_layer_adds_target_layers_with_the_same_scale():
    pytest.importorskip("ri2fl.infer")
    ri = ri_volume()
    layers = predict_layer(ri, VOXEL, model=TinyNet(), name="cell", device="cpu")
    assert [k["name"] for _, k, _ in layers] == ["cell membrane", "cell nucleus"]
    for arr, kwargs, kind in layers:
        assert kind == "image" and arr.shape == ri.shape
        assert kwargs["scale"] == pytest.approx(VOXEL)
    membrane, nucleus = (np.asarray(a) for a, _, _ in layers)
    np.testing.assert_allclose(membrane + nucleus, 1.0, atol=2e-2)  # x and 1 - x
    assert np.corrcoef(membrane.ravel(), ri.ravel())[0, 1] > 0.9


def test_a_frame_prediction_sits_at_its_frame_and_says_which():
    pytest.importorskip("ri2fl.infer")
    movie = np.stack([ri_volume(seed=s) for s in range(3)])
    layers = predict_layer(movie, (30.0, *VOXEL), model=TinyNet(), name="movie", frames=[1],
                           device="cpu")
    data, kwargs, _ = layers[0]
    assert kwargs["name"] == "movie membrane t=1"
    assert data.shape == (1, *movie.shape[1:])  # shown at frame 1 only, not on every frame
    assert kwargs["translate"] == pytest.approx((30.0, 0, 0, 0))
    assert kwargs["metadata"]["ri2fl"]["frames"] == [1]
    expected = predict_layer(movie[1], VOXEL, model=TinyNet(), device="cpu")
    np.testing.assert_allclose(data[0], expected[0][0], atol=1e-6)
    every = predict_layer(movie, (30.0, *VOXEL), model=TinyNet(), name="movie", device="cpu")
    assert every[0][1]["name"] == "movie membrane" and every[0][0].shape == movie.shape
    from ri2fl.errors import InputError

    with pytest.raises(InputError, match="no physical scale"):
        predict_layer(movie[0], (1.0, 1.0, 1.0), model=TinyNet())


def test_a_cancelled_run_stops_at_the_next_network_call():
    pytest.importorskip("ri2fl.infer")
    reports = []
    control = RunControl(report=lambda done, total, message: reports.append(message))
    layers = predict_layer(ri_volume(), VOXEL, model=TinyNet(), device="cpu", control=control)
    assert len(layers) == 2 and control.network_calls > 0 and "network calls" in reports[-1]
    control.cancel()
    with pytest.raises(RunCancelledError):
        predict_layer(ri_volume(), VOXEL, model=TinyNet(), device="cpu", control=control)


def test_segment_layer_returns_labels_layers():
    segment = pytest.importorskip("ri2fl.segment")
    models = pytest.importorskip("ri2fl.models")
    from ri2fl.napari import segment_layer

    shipped = set(models.available()) if hasattr(models, "available") else set()
    if not hasattr(segment, "segment_volume") or not {"segment-default",
                                                      "cell-default"} <= shipped:
        pytest.skip("segmentation models not shipped in this checkout")
    ri = ri_volume((16, 32, 32))
    layers = segment_layer(ri, VOXEL, method="network", name="cell")
    kinds = {k["name"]: t for _, k, t in layers}
    assert kinds["cell labels: cell"] == "labels" and kinds["cell labels: nucleus"] == "labels"
    assert kinds["cell mask: nucleus"] == "labels"
    for arr, kwargs, _ in layers:
        assert arr.shape == ri.shape and kwargs["scale"] == pytest.approx(VOXEL)


def test_writer_round_trips_layers_through_ome_zarr(tmp_path):
    pytest.importorskip("ri2fl.io")
    from ri2fl.napari._contrib import write_ome_zarr_layers

    rng = np.random.default_rng(0)
    layers = [(rng.random((6, 16, 16), dtype=np.float32),
               {"name": f"cell {n}", "scale": (1.0, *VOXEL),
                "metadata": {"ri2fl": {"medium_index": 1.335}}}, "image")
              for n in ("membrane", "nucleus")]
    [written] = write_ome_zarr_layers(str(tmp_path / "x.ome.zarr"), layers)
    back = read_layers(written)
    assert [k["name"] for _, k, _ in back] == ["x membrane", "x nucleus"]
    for (a, _, _), (b, kwargs, _) in zip(layers, back):
        assert kwargs["scale"] == pytest.approx(VOXEL)
        np.testing.assert_array_equal(np.asarray(b), a)
    from ri2fl.errors import InputError

    with pytest.raises(InputError, match="one shape"):
        write_ome_zarr_layers(str(tmp_path / "y.ome.zarr"),
                              [layers[0], (np.zeros((2, 2, 2)), {"name": "z"}, "image")])


def test_sample_data_is_a_simulated_cell_with_ground_truth():
    simulate = pytest.importorskip("ri2fl.simulate")
    if not hasattr(simulate, "simulate_fov"):
        pytest.skip("ri2fl.simulate.simulate_fov not available yet")
    from ri2fl.napari._contrib import simulated_cell

    layers = simulated_cell(shape=(16, 64, 64))
    names = [k["name"] for _, k, _ in layers]
    assert names[0] == "simulated RI" and "true nucleus" in names
    assert names[-1] == "true cell labels" and layers[-1][2] == "labels"
    scale = layers[0][1]["scale"]
    assert all(k["scale"] == scale for _, k, _ in layers) and scale != (1.0, 1.0, 1.0)
    assert layers[0][0].shape == (16, 64, 64)


def test_segmentation_outputs_open_as_labels(tmp_path):
    io = pytest.importorskip("ri2fl.io")
    stack = np.zeros((3, 4, 8, 8), np.int32)
    stack[0, 1:3, 2:6, 2:6] = 1
    stack[2, 1:2, 3:5, 3:5] = 1
    path = io.write_ome_zarr(tmp_path / "cell.ome.zarr", stack, VOXEL,
                             channel_names=["cell_labels", "nucleus_labels", "nucleus"])
    layers = read_layers(path)
    assert [t for _, _, t in layers] == ["labels"] * 3  # "nucleus" is a mask here
    assert [k["name"] for _, k, _ in layers] == ["cell labels: cell", "cell labels: nucleus",
                                                 "cell mask: nucleus"]
    np.testing.assert_array_equal(np.asarray(layers[0][0]), stack[0])


def test_paired_hdf5_opens_with_its_fluorescence_masks_and_labels(tmp_path):
    io = pytest.importorskip("ri2fl.io")
    ri = ri_volume()
    nucleus = np.zeros(ri.shape, np.float32)
    nucleus[2:6, 8:16, 8:16] = 0.04  # dim: contrast must come from the data
    mask = (nucleus > 0).astype(np.uint8)
    sample = io.PairedSample(ri=ri, fl={"nucleus": nucleus}, voxel_size_um=VOXEL,
                             medium_index=1.335, masks={"nucleus": mask},
                             cell_labels=mask.astype(np.int32))
    path = io.write_paired(tmp_path / "pair.h5", sample)
    layers = read_layers(path)
    assert [(k["name"], t) for _, k, t in layers] == [
        ("pair", "image"), ("pair nucleus", "image"), ("pair mask: nucleus", "labels"),
        ("pair labels: cell", "labels")]
    assert layers[1][1]["contrast_limits"][1] == pytest.approx(0.04, abs=1e-3)
    assert all(k["scale"] == pytest.approx(VOXEL) for _, k, _ in layers)
