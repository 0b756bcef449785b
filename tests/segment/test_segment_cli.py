"""``ri2fl segment`` writes a readable, named OME-Zarr label stack."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.models import available

needs_weights = pytest.mark.skipif(
    not {"segment-default", "cell-default"} <= set(available()),
    reason="shipped segmentation weights not installed")


@pytest.mark.slow
@needs_weights
def test_cli_writes_readable_ome_zarr(hl60_path, tmp_path, capsys):
    from ri2fl.cli.main import main
    from ri2fl.io import read, read_labels

    # every other voxel (70^3) keeps the test fast
    np.save(tmp_path / "hl60.npy", np.asarray(read(hl60_path).data)[::2, ::2, ::2])
    out = tmp_path / "masks"
    rc = main(["--quiet", "segment", str(tmp_path / "hl60.npy"), "-o", str(out), "--serial",
               "--voxel-size", "0.278", "0.278", "0.278", "--medium-index", "1.335"])
    assert rc == 0
    assert str(out / "hl60.ome.zarr") in capsys.readouterr().out
    vol = read(out / "hl60.ome.zarr")  # the RI, with the segmentation as its NGFF labels
    assert vol.axes == "zyx" and vol.spatial_shape == (70, 70, 70)
    assert vol.channel_names == ["ri"] and np.allclose(vol.voxel_size_um, 0.278)
    labels = read_labels(out / "hl60.ome.zarr")
    assert list(labels) == ["cell_labels", "nucleus_labels", "nucleus", "nucleolus",
                            "membrane", "lipid_droplets"]
    assert labels["cell_labels"].dtype == np.int32 and labels["nucleus"].dtype == np.uint8
    # the whole-cell mask holds one cell, not a fragment: equivalent diameter over 10 µm (the
    # real cell is 15-19 µm; the shipped CPU-trained weights read it as about 12 µm)
    diameter = (6 * labels["membrane"].sum() * 0.278**3 / np.pi) ** (1 / 3)
    assert diameter > 10
    assert all(set(np.unique(labels[m])) <= {0, 1} for m in list(labels)[2:])


def test_cli_refuses_bad_options(tmp_path, capsys):
    from ri2fl.cli.main import main

    rc = main(["segment", str(tmp_path / "x.npy"), "-o", str(tmp_path), "--fl", "infer"])
    assert rc == 2
    assert "--fl" in capsys.readouterr().err


@pytest.mark.parametrize("argv,expected", [
    (["--method", "watershed"], "infer"),  # the RI2FL route classifies inferred fluorescence
    (["--method", "watershed", "--fl", "none"], "none"),
    ([], "none"),
])
def test_watershed_classifies_inferred_fluorescence_unless_told(argv, expected):
    import argparse

    from ri2fl.cli.segment import _options, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = _options(parser.parse_args(["x.h5", "-o", "out", *argv]))
    assert options["fl"] == expected


def _fake_segment_file(input_path, output_path, **options):
    """Stands in for the networks: a readable label stack named after the input."""
    from ri2fl.io import write_ome_zarr

    ri = np.load(input_path)
    labels = (ri > ri.mean()).astype(np.int32)[None]
    write_ome_zarr(output_path, labels, (0.2, 0.2, 0.2), channel_names=["cell_labels"],
                   axes="czyx", name=input_path.name)
    return output_path


@pytest.fixture
def fake_segment(monkeypatch, tmp_path, rng):
    monkeypatch.setattr("ri2fl.cli.segment.segment_file", _fake_segment_file)
    inputs = [tmp_path / "a.npy", tmp_path / "b.npy"]
    for path in inputs:
        np.save(path, rng.random((6, 12, 12)).astype(np.float32))
    return inputs


def test_one_input_writes_exactly_the_named_store(fake_segment, tmp_path, capsys):
    from ri2fl.cli.main import main
    from ri2fl.io import read

    out = tmp_path / "masks.ome.zarr"
    assert main(["segment", str(fake_segment[0]), "-o", str(out), "--serial"]) == 0
    assert capsys.readouterr().out.split() == [str(out)]
    vol = read(out)
    assert vol.channel_names == ["cell_labels"] and vol.spatial_shape == (6, 12, 12)
    assert not (out / "a.ome.zarr").exists()
    assert main(["segment", str(fake_segment[0]), "-o", str(out)]) == 2  # exists
    assert "--overwrite" in capsys.readouterr().err
    assert main(["segment", str(fake_segment[0]), "-o", str(out), "--overwrite"]) == 0


def test_many_inputs_to_one_named_store_are_refused(fake_segment, tmp_path, capsys):
    from ri2fl.cli.main import main

    rc = main(["segment", *map(str, fake_segment), "-o", str(tmp_path / "m.ome.zarr")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2 inputs" in err
    assert not (tmp_path / "m.ome.zarr").exists()


@needs_weights  # a folder run fingerprints the shipped weights to resume
def test_many_inputs_into_a_folder(fake_segment, tmp_path):
    from ri2fl.cli.main import main

    assert main(["segment", *map(str, fake_segment), "-o", str(tmp_path / "m"), "--serial"]) == 0
    assert sorted(p.name for p in (tmp_path / "m").glob("*.ome.zarr")) == ["a.ome.zarr",
                                                                           "b.ome.zarr"]
