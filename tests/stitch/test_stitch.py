"""Stitching: tiles cut from a known volume at known offsets must be put back exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from ri2fl.stitch import fuse_tiles, fused_shape, grid_positions, stitch_tiles

TILE = (6, 48, 56)


def textured(shape, seed=0) -> np.ndarray:
    """An RI-like volume with structure at several scales (what the cells give us)."""
    rng = np.random.default_rng(seed)
    v = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 1.5)
    v += ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 4) * 2
    v = (v - v.min()) / (v.max() - v.min())
    return (1.337 + 0.03 * v).astype(np.float32)


def cut_tiles(full, grid, overlap, jitter, seed=0, tile=TILE):
    """Tiles of ``full`` on a grid, each displaced by up to ``jitter`` voxels (stage error)."""
    rng = np.random.default_rng(seed)
    nominal = grid_positions(tile, grid, overlap)
    true = np.round(nominal).astype(int) + jitter
    true[:, 1:] += rng.integers(-jitter, jitter + 1, size=(len(true), 2))
    true[:, 0] = 0
    tiles = [full[:, y:y + tile[1], x:x + tile[2]].copy() for _, y, x in true]
    return tiles, true - true.min(axis=0), true.min(axis=0)


def covered(tiles, offsets, shape):
    mask = np.zeros(shape, bool)
    for t, (z, y, x) in zip(tiles, np.round(offsets).astype(int)):
        mask[z:z + t.shape[0], y:y + t.shape[1], x:x + t.shape[2]] = True
    return mask


def test_offsets_recovered_and_stitched_volume_equals_the_original():
    full = textured((6, 140, 200))
    tiles, true, origin = cut_tiles(full, (2, 3), 0.2, jitter=4)
    offsets = stitch_tiles(tiles, grid=(2, 3), overlap=0.2)
    assert np.abs(offsets - true).max() <= 1.0
    np.testing.assert_array_equal(np.round(offsets), true)  # integer shifts: exact
    fused = fuse_tiles(tiles, offsets, fill=0.0)
    assert fused.shape == fused_shape([t.shape for t in tiles], offsets)
    ref = full[:, origin[1]:origin[1] + fused.shape[1], origin[2]:origin[2] + fused.shape[2]]
    mask = covered(tiles, offsets, fused.shape)
    np.testing.assert_allclose(fused[mask], ref[mask], rtol=0, atol=1e-6)
    assert np.all(fused[~mask] == 0.0)


def test_subvoxel_offsets_are_refined():
    full = textured((6, 100, 110), seed=1)
    spectrum = np.fft.fftn(full)
    rng = np.random.default_rng(3)
    nominal = np.round(grid_positions(TILE, (1, 2), 0.3)).astype(int) + 8
    tiles, true = [], []
    for _, y, x in nominal:
        frac = rng.uniform(-0.45, 0.45, size=2)
        moved = np.fft.ifftn(ndimage.fourier_shift(spectrum, (0, -frac[0], -frac[1]))).real
        tiles.append(moved[:, y:y + TILE[1], x:x + TILE[2]].astype(np.float32))
        true.append((0, y + frac[0], x + frac[1]))
    true = np.asarray(true) - np.min(true, axis=0)
    refined = stitch_tiles(tiles, grid=(1, 2), overlap=0.3, upsample_factor=20)
    coarse = stitch_tiles(tiles, grid=(1, 2), overlap=0.3, upsample_factor=1)
    err = np.abs(refined - true).max()
    assert err <= 0.35 and err < np.abs(coarse - true).max()


def test_feathering_removes_the_seam_between_unequal_tiles():
    full = textured((6, 60, 110), seed=2)
    left, right = full[:, :, :64].copy(), full[:, :, 46:].copy() + 0.01  # brighter tile
    offsets = np.array([[0, 0, 0], [0, 0, 46]], float)
    linear = fuse_tiles([left, right], offsets, blend="linear")
    average = fuse_tiles([left, right], offsets, blend="average")
    step = (linear - full)[:, :, 40:70].mean(axis=(0, 1))
    assert step[0] == pytest.approx(0, abs=1e-6) and step[-1] == pytest.approx(0.01, abs=1e-6)
    assert np.all(np.diff(step) >= -1e-7)  # a ramp from one tile to the other...
    assert np.max(np.diff(step)) < 0.01 / 4  # ...not a step
    # the plain mean jumps at both ends of the overlap
    assert np.max(np.diff((average - full)[:, :, 40:70].mean(axis=(0, 1)))) > 0.004


def test_blank_tile_keeps_its_nominal_place_and_does_not_spoil_the_others():
    full = textured((6, 140, 200), seed=4)
    tiles, true, _ = cut_tiles(full, (2, 3), 0.2, jitter=3, seed=5)
    tiles[5] = np.full(TILE, 1.337, np.float32)  # an empty field: nothing to correlate
    offsets = stitch_tiles(tiles, grid=(2, 3), overlap=0.2)
    np.testing.assert_array_equal(np.round(offsets[:5]), true[:5])
    nominal = grid_positions(TILE, (2, 3), 0.2)
    # placed on the grid next to its neighbours (tiles 2 and 4)
    expected = (true[4] + nominal[5] - nominal[4] + true[2] + nominal[5] - nominal[2]) / 2
    assert np.abs(offsets[5] - expected).max() <= 0.5


def test_streaming_in_blocks_equals_fusing_at_once(tmp_path):
    full = textured((6, 140, 200), seed=6)
    tiles, _, _ = cut_tiles(full, (2, 3), 0.2, jitter=2, seed=7)
    offsets = stitch_tiles(tiles, grid=(2, 3), overlap=0.2)
    whole = fuse_tiles(tiles, offsets)
    blocks = fuse_tiles(tiles, offsets, block=(4, 16, 24))
    np.testing.assert_allclose(blocks, whole, atol=1e-6)

    io = pytest.importorskip("ri2fl.io")
    if not hasattr(io, "create_ome_zarr"):
        pytest.skip("ri2fl.io.create_ome_zarr not available yet")
    from ri2fl.stitch.files import stitch_to_ome_zarr

    path = stitch_to_ome_zarr(tmp_path / "field.ome.zarr", tiles, offsets, (0.2, 0.15, 0.15),
                              fill=1.337, medium_index=1.337, chunks=(4, 32, 32))
    vol = io.read(path)
    assert vol.voxel_size_um == pytest.approx((0.2, 0.15, 0.15))
    np.testing.assert_allclose(np.asarray(vol.data), np.where(
        covered(tiles, offsets, whole.shape), whole, 1.337), atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_bad_layouts_are_clear_errors():
    from ri2fl.errors import ConfigError, InputError

    tiles = [np.zeros(TILE, np.float32)] * 4
    with pytest.raises(ConfigError, match="grid"):
        stitch_tiles(tiles, grid=(2, 3))
    with pytest.raises(ConfigError, match="overlap"):
        stitch_tiles(tiles, grid=(2, 2), overlap=1.5)
    with pytest.raises(InputError, match="3D"):
        stitch_tiles([np.zeros((4, 4))], grid=(1, 1))


def test_simulated_tiles_from_the_simulator():
    simulate = pytest.importorskip("ri2fl.simulate")
    if not hasattr(simulate, "simulate_tiles"):
        pytest.skip("ri2fl.simulate.simulate_tiles not available yet")
    from ri2fl.constants import RI_CLIP

    # with the tomograph's blur and noise (physics="fast") the offsets are still found...
    tiles, offsets, _ = simulate.simulate_tiles(seed=0, grid=(2, 2), tile_shape=(8, 96, 96),
                                                overlap=0.2)
    true = np.asarray(offsets, float) - np.min(offsets, axis=0)
    assert np.abs(stitch_tiles(tiles, grid=(2, 2), overlap=0.2) - true).max() <= 1.0
    # ...and with exact tiles (clipped RI only) the stitched field is the original one
    tiles, offsets, full = simulate.simulate_tiles(seed=1, grid=(2, 2), tile_shape=(8, 96, 96),
                                                   overlap=0.2, physics="none")
    true = np.asarray(offsets, float) - np.min(offsets, axis=0)
    found = stitch_tiles(tiles, grid=(2, 2), overlap=0.2)
    assert np.abs(found - true).max() <= 1.0
    fused = fuse_tiles(tiles, found)
    mask = covered(tiles, found, fused.shape)
    z, y, x = np.min(offsets, axis=0)
    ref = np.clip(full, *RI_CLIP)[z:z + fused.shape[0], y:y + fused.shape[1],
                                  x:x + fused.shape[2]]
    np.testing.assert_allclose(fused[mask], ref[mask], atol=1e-6)


def write_tiles(folder, tiles, positions_um=None):
    import h5py

    paths = []
    for k, t in enumerate(tiles):
        path = folder / f"tile{k}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("ri", data=t)
            f.attrs["voxel_size_um"] = [0.2, 0.15, 0.15]
            f.attrs["medium_index"] = 1.337
            if positions_um is not None:
                f.attrs["position_um"] = positions_um[k]
        paths.append(path)
    return paths


def test_cli_stitches_tile_files_into_ome_zarr(tmp_path, capsys):
    io = pytest.importorskip("ri2fl.io")
    if not hasattr(io, "create_ome_zarr"):
        pytest.skip("ri2fl.io.create_ome_zarr not available yet")
    from ri2fl.cli.main import main

    full = textured((6, 100, 110), seed=8)
    tiles, true, _ = cut_tiles(full, (2, 2), 0.25, jitter=3, seed=9)
    paths = write_tiles(tmp_path, tiles)
    out = tmp_path / "field.ome.zarr"
    argv = ["stitch", *map(str, paths), "-o", str(out), "--grid", "2x2", "--overlap", "0.25",
            "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.round(report["offsets_voxels"]), true)
    vol = io.read(out)
    fused = fuse_tiles(tiles, np.asarray(report["offsets_voxels"]), fill=1.337)  # medium
    np.testing.assert_allclose(np.asarray(vol.data), fused, atol=1e-6)
    assert vol.medium_index == pytest.approx(1.337)

    assert main(["stitch", *map(str, paths[:3]), "-o", str(tmp_path / "x.ome.zarr"),
                 "--grid", "2x2"]) == 2
    assert "needs 4 tiles, got 3" in capsys.readouterr().err


def test_cli_uses_stage_positions_from_metadata(tmp_path, capsys):
    io = pytest.importorskip("ri2fl.io")
    if not hasattr(io, "create_ome_zarr"):
        pytest.skip("ri2fl.io.create_ome_zarr not available yet")
    from ri2fl.cli.main import main

    full = textured((6, 100, 110), seed=10)
    tiles, true, _ = cut_tiles(full, (2, 2), 0.25, jitter=3, seed=11)
    rng = np.random.default_rng(0)
    stage = (true + rng.uniform(-2, 2, true.shape)) * [0.2, 0.15, 0.15]  # imprecise stage
    stage[:, 0] = 0
    paths = write_tiles(tmp_path, tiles, positions_um=stage)
    out = tmp_path / "field.ome.zarr"
    assert main(["stitch", *map(str, paths), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.round(report["offsets_voxels"]), true)


def test_cli_reads_tcf_stage_positions_and_ignores_unrecorded_ones(tmp_path, capsys):
    tcf = pytest.importorskip("ri2fl.io.tcf")
    import h5py

    from ri2fl.cli.main import main
    from ri2fl.stitch.files import TCF_POSITION_UNIT_UM

    full = textured((6, 100, 110), seed=12)
    tiles, true, _ = cut_tiles(full, (2, 2), 0.25, jitter=3, seed=13)
    paths = []
    for k, tile in enumerate(tiles):
        path = tcf.write_tcf(tmp_path / f"tile{k}.TCF", tile, (0.2, 0.15, 0.15))
        paths.append(path)
    # unrecorded positions (all 0): not used, the 4 tiles are taken as a 2x2 grid
    assert main(["stitch", *map(str, paths), "-o", str(tmp_path / "a.ome.zarr"),
                 "--overlap", "0.25", "--json"]) == 0
    found = np.asarray(json.loads(capsys.readouterr().out)["offsets_voxels"])
    np.testing.assert_array_equal(np.round(found), true)
    # recorded stage positions (mm), 1 voxel off: used, then refined
    for path, (_, y, x) in zip(paths, true):
        with h5py.File(path, "r+") as f:
            attrs = f["Data/3D/000000"].attrs
            attrs["PositionY"] = [(y + 1) * 0.15 / TCF_POSITION_UNIT_UM]
            attrs["PositionX"] = [(x - 1) * 0.15 / TCF_POSITION_UNIT_UM]
    assert main(["stitch", *map(str, paths), "-o", str(tmp_path / "b.ome.zarr"),
                 "--positions", "metadata", "--json"]) == 0
    found = np.asarray(json.loads(capsys.readouterr().out)["offsets_voxels"])
    np.testing.assert_array_equal(np.round(found), true)
