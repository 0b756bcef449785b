"""``-o``: one named output for one input, else a folder of outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _batch_tasks import make_inputs, zarr_task

from ri2fl.batch import ZARR_SUFFIXES, run_single, single_output_path
from ri2fl.errors import ConfigError, OutputError


@pytest.mark.parametrize("output,expected", [
    ("pred.ome.zarr", "pred.ome.zarr"), ("x/Pred.OME.ZARR/", "x/Pred.OME.ZARR"),
    ("pred.zarr", "pred.zarr"), ("predictions", None), ("out/", None), (".", None),
])
def test_one_input_names_its_output_or_a_folder(output, expected):
    got = single_output_path(["cell.TCF"], output, ZARR_SUFFIXES)
    assert got == (Path(expected) if expected else None)


def test_many_inputs_need_a_folder():
    assert single_output_path(["a.TCF", "b.TCF"], "predictions") is None
    with pytest.raises(ConfigError, match=r"names one \.ome\.zarr output, but 2 inputs"):
        single_output_path(["a.TCF", "b.TCF"], "pred.ome.zarr")


@pytest.mark.parametrize("output", ["pred.tif", "pred.ome.tiff", "cells.parquet", "x.h5"])
def test_a_file_the_command_does_not_write_is_refused(output):
    with pytest.raises(ConfigError, match="cannot write"):
        single_output_path(["cell.TCF"], output, ZARR_SUFFIXES)


def test_run_single_writes_exactly_the_named_output(tmp_path):
    (inp,) = make_inputs(tmp_path / "in", 1)
    out = tmp_path / "pred.ome.zarr"
    assert run_single(zarr_task, inp, out) == out
    import zarr

    np.testing.assert_allclose(zarr.open_array(str(out), mode="r")[:], np.load(inp) + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "pred.ome.zarr"]
    with pytest.raises(OutputError, match="--overwrite"):
        run_single(zarr_task, inp, out)
    run_single(zarr_task, inp, out, overwrite=True)  # ri2fl's own: replaced when asked


def test_run_single_never_replaces_foreign_data_or_the_input(tmp_path):
    (inp,) = make_inputs(tmp_path / "in", 1)
    foreign = tmp_path / "mine.ome.zarr"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(OutputError, match="not written by ri2fl"):
        run_single(zarr_task, inp, foreign, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep"
    with pytest.raises(OutputError, match="input"):
        run_single(zarr_task, inp, inp, overwrite=True)
