"""Every OME-Zarr store ri2fl writes passes the NGFF specification's models (ome-zarr-models).

The stores are re-read from disk and opened with ``ome_zarr_models.open_ome_zarr``, the
library's own entry point, not with the validation the writer runs before moving the store
into place; that one is checked by making the writer produce metadata that break the spec.
"""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from ome_zarr_models import open_ome_zarr
from ome_zarr_models.common.omero import Omero

from ri2fl.io import create_ome_zarr, write_ome_zarr
from ri2fl.io import ome_zarr as ome_zarr_mod

VOXEL = (0.2, 0.15, 0.12)
SPATIAL = (4, 16, 16)


def _lead(axes: str) -> tuple[int, ...]:
    return {"zyx": (), "czyx": (2,), "tczyx": (2, 3)}[axes]


def _write_whole(path, data, axes, version, levels):
    return write_ome_zarr(path, data, VOXEL, axes=axes, ngff_version=version, levels=levels,
                          time_interval_s=5.0)


def _write_streamed(path, data, axes, version, levels):
    """Plane by plane through ``create_ome_zarr``, display windows set at the end."""
    n_ch = data.shape[axes.index("c")] if "c" in axes else 1
    with create_ome_zarr(path, data.shape, VOXEL, axes=axes, ngff_version=version,
                         levels=levels, time_interval_s=5.0) as out:
        for z in range(data.shape[-3]):
            out[..., z, :, :] = data[..., z, :, :]
        out.set_windows([(0.0, 2.0)] * n_ch)
    return path


def _ome(path, version: str) -> dict:
    attrs = zarr.open_group(path, mode="r").attrs.asdict()
    return attrs["ome"] if version == "0.5" else attrs


@pytest.mark.parametrize("writer", [_write_whole, _write_streamed], ids=["write", "create"])
@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("axes", ["zyx", "czyx", "tczyx"])
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_written_store_validates_against_ngff_models(tmp_path, rng, writer, levels, axes,
                                                     version):
    data = rng.random(_lead(axes) + SPATIAL, dtype=np.float32)
    path = writer(tmp_path / "x.ome.zarr", data, axes, version, levels)
    image = open_ome_zarr(zarr.open_group(path, mode="r"), version=version)
    assert image.ome_zarr_version == version
    (datasets,) = image.datasets
    assert [d.path for d in datasets] == [str(level) for level in range(levels)]
    lead_scale = {"zyx": [], "czyx": [1.0], "tczyx": [5.0, 1.0]}[axes]
    for level, dataset in enumerate(datasets):
        f = 2**level
        expected = [*lead_scale, VOXEL[0], VOXEL[1] * f, VOXEL[2] * f]
        assert dataset.coordinateTransformations[0].scale == pytest.approx(expected)
    Omero.model_validate(_ome(path, version)["omero"])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_metadata_that_break_the_spec_are_a_bug(tmp_path, monkeypatch, version):
    """A time axis last: the models refuse it while building, and nothing is written."""
    monkeypatch.setitem(ome_zarr_mod._AXIS_TYPES, "x", "time")
    with pytest.raises(RuntimeError, match="a bug in ri2fl"):
        create_ome_zarr(tmp_path / "x.ome.zarr", SPATIAL, VOXEL, ngff_version=version)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_store_checked_before_it_is_moved_into_place(tmp_path, version):
    """Metadata that no longer fit the arrays fail ``finalize``; the store is not kept."""
    path = tmp_path / "x.ome.zarr"
    out = create_ome_zarr(path, SPATIAL, VOXEL, ngff_version=version)
    attrs = out.group.attrs.asdict()
    ome = attrs["ome"] if version == "0.5" else attrs
    ome["multiscales"][0]["datasets"][0]["path"] = "missing"
    out.group.attrs.update(attrs)
    with pytest.raises(RuntimeError, match="a bug in ri2fl"):
        out.finalize()
    assert list(tmp_path.iterdir()) == []
