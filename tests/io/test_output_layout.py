"""One output layout per product (issue #31, items 5 and 6).

Predictions have the same channels, names and type whoever writes them (``ri2fl predict``,
``ri2fl demo``, the Python API); masks and instances are the NGFF ``labels`` of the RI they
were made from; metadata names are the store's name; ``ri2fl profile`` reuses what it is
given or finds and leaves nothing but its table; a batch reports each failure once and
leaves no lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from ri2fl.cli.main import main
from ri2fl.errors import ConfigError
from ri2fl.io import (
    PREDICTION_DTYPES,
    check_prediction_dtype,
    read,
    read_labels,
    write_ome_zarr,
    write_prediction,
)

torch = pytest.importorskip("torch")
models = pytest.importorskip("ri2fl.models")

VOXEL = (0.2, 0.15, 0.15)
GRID = ["--voxel-size", *map(str, VOXEL)]
MASKS = ("nucleus", "nucleolus", "membrane", "lipid_droplets")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = {"model": {"features": 4, "depth": 2, "dropout": 0.2},
              "targets": ["membrane", "nucleus"], "patch_size": [16, 32, 32]}
    net = models.build(config)
    with torch.no_grad():
        net.head.bias.fill_(1.0)
    return models.save_checkpoint(tmp_path_factory.mktemp("m") / "tiny.pt", net, config)


@pytest.fixture
def ri_file(tmp_path) -> Path:
    ri = (1.337 + 0.03 * np.random.default_rng(0).random((8, 24, 24))).astype(np.float32)
    path = tmp_path / "in" / "cell.npy"
    path.parent.mkdir()
    np.save(path, ri)
    return path


def _cells(shape=(8, 24, 24)) -> dict[str, np.ndarray]:
    cells = np.zeros(shape, np.int32)
    cells[2:6, 2:12, 2:12], cells[2:6, 12:22, 12:22] = 1, 2
    nuclei = np.where(np.isin(cells, [1, 2]), cells, 0) * 0
    nuclei[3:5, 4:9, 4:9], nuclei[3:5, 14:19, 14:19] = 1, 2
    labels = {"cell_labels": cells, "nucleus_labels": nuclei}
    labels.update({m: (nuclei > 0) if m == "nucleus" else (cells > 0) for m in MASKS})
    return labels


def _meta(store: Path) -> dict:
    attrs = json.loads((store / "zarr.json").read_text())["attributes"]
    return attrs["ome"]


def _layout(store: Path) -> tuple[list[str], str, str]:
    meta = _meta(store)
    names = [c["label"] for c in meta["omero"]["channels"]]
    return names, str(zarr.open_array(store / "0", mode="r").dtype), meta["multiscales"][0][
        "name"]


# --------------------------------------------------------------------------- predictions

@pytest.mark.parametrize("dtype", PREDICTION_DTYPES)
def test_predict_api_and_demo_write_one_layout(tmp_path, checkpoint, ri_file, dtype):
    from ri2fl.demo import _write_volumes
    from ri2fl.profile.pipeline import ProfiledField

    out = tmp_path / "pred"
    assert main(["predict", str(ri_file), "-o", str(out), "--model", str(checkpoint),
                 "--tta", "2", "--mc", "2", "--serial", "--device", "cpu", "--dtype", dtype,
                 "--voxel-size", *map(str, VOXEL)]) == 0
    names, stored, _ = _layout(out / "cell.ome.zarr")
    assert names == ["membrane", "nucleus", "membrane_uncertainty_data",
                     "nucleus_uncertainty_data", "membrane_uncertainty_model",
                     "nucleus_uncertainty_model"] and stored == dtype
    pred = np.asarray(read(out / "cell.ome.zarr", modality="fl").data)
    assert np.isfinite(pred).all() and pred[:2].max() > 0

    maps = dict(zip(names, pred))
    fl = {t: maps[t] for t in ("membrane", "nucleus")}
    data = {t: maps[f"{t}_uncertainty_data"] for t in fl}
    model = {t: maps[f"{t}_uncertainty_model"] for t in fl}
    api = write_prediction(tmp_path / "api.ome.zarr", fl, VOXEL, uncertainty_data=data,
                           uncertainty_model=model, dtype=dtype)
    assert _layout(api)[:2] == (names, dtype)

    field = ProfiledField(pd.DataFrame(), np.load(ri_file), VOXEL, 1.337, fl,
                          **{k: v for k, v in _cells().items() if k.endswith("labels")},
                          masks={m: v for m, v in _cells().items() if m in MASKS},
                          uncertainty_data=data, uncertainty_model=model)
    ri_store, fl_store = _write_volumes(tmp_path / "demo", "f", field)
    # the demo writes the default type: the CLI's default
    assert _layout(fl_store)[:2] == (names, PREDICTION_DTYPES[0])
    assert _layout(ri_store)[:2] == (["ri"], "float32")
    assert set(read_labels(ri_store)) == {"cell_labels", "nucleus_labels", *MASKS}


def test_a_float16_prediction_is_the_float32_one_rounded(tmp_path, checkpoint, ri_file):
    stores = {}
    for dtype in PREDICTION_DTYPES:
        out = tmp_path / dtype
        assert main(["predict", str(ri_file), "-o", str(out), "--model", str(checkpoint),
                     "--serial", "--device", "cpu", "--dtype", dtype, *GRID]) == 0
        stores[dtype] = zarr.open_array(out / "cell.ome.zarr" / "0", mode="r")[...]
    np.testing.assert_array_equal(stores["float16"],
                                  stores["float32"].astype(np.float16))  # rounded once
    with pytest.raises(ConfigError, match="float32 or float16"):
        check_prediction_dtype("int8")


# --------------------------------------------------------------------------- labels

@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_labels_are_an_ngff_labels_group_of_their_image(tmp_path, version):
    from ome_zarr_models import open_ome_zarr

    labels = {**_cells(), "lipid_droplets": np.zeros((8, 24, 24), bool)}  # none: no chunk
    store = write_ome_zarr(tmp_path / "cell.ome.zarr", np.full((8, 24, 24), 1.34, np.float32),
                           VOXEL, ngff_version=version, labels=labels, levels=2)
    group = zarr.open_group(store, mode="r")
    listed = group["labels"].attrs.asdict()
    assert listed.get("ome", listed)["labels"] == list(labels)
    image = open_ome_zarr(group)  # the specification's models: labels group included
    assert type(image).__name__ == "Image"
    for name, data in labels.items():
        sub = group["labels"][name].attrs.asdict()
        sub = sub.get("ome", sub)
        assert sub["image-label"]["source"]["image"] == "../../"
        assert sub["multiscales"][0]["name"] == name
        stored = group["labels"][name]["0"]
        assert np.issubdtype(stored.dtype, np.integer) and stored.shape == data.shape
    # the image itself stays the RI; readers get the labels as integers
    assert read(store).channel_names == ["ri"]
    back = read_labels(store)
    assert back["cell_labels"].dtype == np.int32 and back["nucleus"].dtype == np.uint8
    for name, data in labels.items():
        np.testing.assert_array_equal(back[name], data)


def test_labels_stored_as_integer_channels_by_an_older_ri2fl_still_read(tmp_path):
    labels = _cells()
    store = write_ome_zarr(tmp_path / "old.ome.zarr", np.stack(list(labels.values())).astype(
        np.int32), VOXEL, channel_names=list(labels))
    back = read_labels(store)
    assert list(back) == list(labels)
    np.testing.assert_array_equal(back["nucleus_labels"], labels["nucleus_labels"])
    assert read_labels(write_ome_zarr(tmp_path / "ri.ome.zarr", np.full(
        (4, 8, 8), 1.34, np.float32), VOXEL)) == {}


def test_segment_writes_the_ri_with_its_labels(tmp_path, ri_file, monkeypatch):
    from ri2fl import models as models_module
    from ri2fl import segment as segment_module
    from ri2fl.segment import Segmentation

    def fake_segment(ri, voxel_size_um, medium, **kwargs):
        cells = _cells(ri.shape)
        return Segmentation({m: cells[m] for m in MASKS}, cells["cell_labels"],
                            cells["nucleus_labels"], voxel_size_um, "network")

    monkeypatch.setattr(segment_module, "segment_volume", fake_segment)
    monkeypatch.setattr(models_module, "load", lambda name, **kw: torch.nn.Identity())
    out = tmp_path / "masks.ome.zarr"
    assert main(["segment", str(ri_file), "-o", str(out), "--serial", *GRID]) == 0
    names, stored, name = _layout(out)
    assert (names, stored, name) == (["ri"], "float32", "masks")  # named after the store
    np.testing.assert_array_equal(np.asarray(read(out).data), np.load(ri_file))
    labels = read_labels(out)
    assert list(labels) == ["cell_labels", "nucleus_labels", *MASKS]
    assert labels["cell_labels"].dtype == np.int32 and labels["membrane"].dtype == np.uint8


# --------------------------------------------------------------------------- names

def test_metadata_names_are_the_final_store_names(tmp_path, checkpoint, ri_file):
    common = ["--model", str(checkpoint), "--serial", "--device", "cpu", *GRID]
    assert main(["predict", str(ri_file), "-o", str(tmp_path / "one.ome.zarr"), *common]) == 0
    assert main(["predict", str(ri_file), "-o", str(tmp_path / "many"), *common]) == 0
    assert _layout(tmp_path / "one.ome.zarr")[2] == "one"
    assert _layout(tmp_path / "many" / "cell.ome.zarr")[2] == "cell"
    text = "".join(p.read_text() for p in tmp_path.rglob("zarr.json"))
    assert "staging" not in text and "partial" not in text


# --------------------------------------------------------------------------- profile

def _no_recompute(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("predicted or segmented again")

    monkeypatch.setattr("ri2fl.infer.predict_volume", refuse)
    monkeypatch.setattr("ri2fl.segment.segment_volume", refuse)


def test_profile_reuses_what_it_finds_and_leaves_only_its_table(tmp_path, monkeypatch):
    from ri2fl.demo import _write_volumes
    from ri2fl.profile.pipeline import ProfiledField, found_beside

    cells = _cells()
    fl = {"nucleus": (cells["nucleus_labels"] > 0) * 0.8 + 0.1,
          "membrane": np.full(cells["cell_labels"].shape, 0.2)}
    field = ProfiledField(pd.DataFrame(), np.full((8, 24, 24), 1.35, np.float32), VOXEL, 1.337,
                          fl, cells["cell_labels"], cells["nucleus_labels"],
                          masks={m: cells[m] for m in MASKS},
                          uncertainty_data={t: v * 0.1 for t, v in fl.items()})
    ri_store, fl_store = _write_volumes(tmp_path, "field", field)
    assert found_beside(ri_store) == {"segmentation": ri_store, "predictions": fl_store}
    _no_recompute(monkeypatch)
    before = sorted(p.name for p in ri_store.parent.iterdir())
    out = tmp_path / "features.parquet"
    assert main(["profile", str(ri_store), "-o", str(out), "--serial"]) == 0
    table = pd.read_parquet(out)
    assert sorted(table["label"]) == [1, 2]
    assert table["nucleus_nucleus_mean_au"].to_numpy() == pytest.approx(0.9)
    assert table["cell_nucleus_uncertainty_mean_au"].notna().all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.parquet", "volumes"]
    assert sorted(p.name for p in ri_store.parent.iterdir()) == before
    # given explicitly (the folder forms too), the same
    assert main(["profile", str(ri_store), "--predictions", str(fl_store), "--segmentation",
                 str(ri_store), "-o", str(tmp_path / "given.csv"), "--serial"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.parquet", "given.csv",
                                                          "volumes"]


# --------------------------------------------------------------------------- clean runs

def test_each_failed_input_is_one_line_and_no_lock_stays(tmp_path, checkpoint, ri_file):
    bad = [ri_file.parent / "bad1.npy", ri_file.parent / "bad2.npy"]
    for path in bad:
        path.write_bytes(b"not an array")
    out = tmp_path / "pred"
    # the real command: its own logging set-up decides what reaches the terminal
    proc = subprocess.run([sys.executable, "-m", "ri2fl.cli.main", "--quiet", "predict",
                           str(ri_file), *map(str, bad), "-o", str(out), "--model",
                           str(checkpoint), "--serial", "--device", "cpu", *GRID],
                          capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for path in bad:
        lines = [line for line in err if str(path) in line]
        assert len(lines) == 1 and lines[0].count(str(path)) == 1, err
        assert lines[0].startswith(f"ri2fl predict: error: {path}: not a valid NumPy file")
    assert err[-1].startswith("ri2fl predict: error: ") and "2 of 3 inputs failed" in err[-1]
    assert len(err) == 3, err
    assert sorted(p.name for p in out.iterdir()) == [".ri2fl-manifest.json", "cell.ome.zarr"]
