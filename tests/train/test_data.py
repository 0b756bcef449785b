"""Datasets: manifests, path safety, normalisation, patches where the signal is."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.data import (
    EmptyMediumPatches,
    PairedVolume,
    PatchDataset,
    list_samples,
    load_pair,
    manifest_weights,
    normalize_input,
    target_variances,
)
from ri2fl.errors import ConfigError, InputError
from ri2fl.transforms import RandomFlip, RandomGamma, RandomRot90, build_augmentation


def test_manifest_splits(paired_folder):
    train = list_samples(paired_folder, "train")
    val = list_samples(paired_folder / "manifest.csv", "val")
    assert [p.name for p, _ in train] == ["fov_0.h5", "fov_1.h5", "fov_2.h5"]
    assert [p.name for p, _ in val] == ["fov_3.h5"]
    assert val[0][1] == "blob"


@pytest.mark.parametrize("entry", ["../outside.h5", "/etc/passwd", "a/../../x.h5"])
def test_manifest_path_escape_refused(tmp_path, entry):
    (tmp_path / "manifest.csv").write_text(f"path,cell_type,seed,split\n{entry},x,0,train\n")
    with pytest.raises(ConfigError, match="outside the data folder"):
        list_samples(tmp_path, "train")


def test_plain_folder_is_split_deterministically(paired_folder, tmp_path):
    for i in range(5):
        (tmp_path / f"f{i}.h5").write_bytes((paired_folder / "fov_0.h5").read_bytes())
    train = list_samples(tmp_path, "train")
    val = list_samples(tmp_path, "val")
    assert len(train) == 4 and len(val) == 1
    assert {p for p, _ in train}.isdisjoint({p for p, _ in val})


def test_ri_normalisation_matches_inference_convention():
    ri = np.array([1.330, 1.337, 1.3635, 1.390, 1.45], np.float32)
    np.testing.assert_allclose(normalize_input(ri), [0, 0, 0.5, 1, 1], atol=1e-6)
    # the medium index shifts the zero
    assert normalize_input(np.array([1.335]), medium_index=1.335)[0] == 0


def test_load_pair_targets_masks_and_bf(paired_folder):
    vol = load_pair(paired_folder / "fov_0.h5", ["nucleus", "masks/nucleus"])
    assert vol.input.shape == (1, 12, 32, 32) and vol.target.shape == (2, 12, 32, 32)
    assert vol.input.min() >= 0 and vol.input.max() <= 1
    assert set(np.unique(vol.target[1])) <= {0.0, 1.0}
    bf = load_pair(paired_folder / "fov_0.h5", ["nucleus"], input_kind="bf")
    assert not np.allclose(bf.input, vol.input)
    with pytest.raises(InputError, match="not in file"):
        load_pair(paired_folder / "fov_0.h5", ["mitochondria"])
    with pytest.raises(InputError, match="'dic'"):
        load_pair(paired_folder / "fov_0.h5", ["nucleus"], input_kind="dic")


def test_load_pair_resamples_to_training_grid(paired_folder):
    vol = load_pair(paired_folder / "fov_0.h5", ["nucleus"], voxel_size_um=(0.4, 0.3, 0.3))
    assert vol.input.shape == (1, 6, 16, 16)


def test_patches_prefer_signal_and_are_reproducible(paired_folder):
    vols = [load_pair(p, ["nucleus"]) for p, _ in list_samples(paired_folder, "train")]
    ds = PatchDataset(vols, (6, 12, 12), n_patches=12, seed=3, foreground_p=1.0,
                      threshold=0.2)
    rich = np.mean([(ds[i][1].numpy() > 0.2).mean() for i in range(len(ds))])
    assert all((ds[i][1].numpy() > 0.2).any() for i in range(len(ds)))
    ds_any = PatchDataset(vols, (6, 12, 12), n_patches=12, seed=3, foreground_p=0.0)
    blind = np.mean([(ds_any[i][1].numpy() > 0.2).mean() for i in range(len(ds_any))])
    assert rich > blind
    a, b = ds[5], ds[5]
    assert np.array_equal(a[0], b[0])
    ds.set_epoch(1)
    assert not np.array_equal(ds[5][0], a[0])


def test_patch_larger_than_volume_is_padded_and_rescale_keeps_size(paired_folder):
    vols = [load_pair(paired_folder / "fov_0.h5", ["nucleus"])]
    big = PatchDataset(vols, (16, 40, 40), n_patches=1)
    assert big[0][0].shape == (1, 16, 40, 40)
    zoomed = PatchDataset(vols, (8, 16, 16), n_patches=4, rescale=(0.5, 2.0))
    assert all(zoomed[i][1].shape == (1, 8, 16, 16) for i in range(4))


def test_geometric_augmentations_move_input_and_target_together(rng):
    base = rng.random((1, 4, 6, 6)).astype(np.float32)
    sample = {"input": base, "target": np.concatenate([base, 2 * base])}
    for t in (RandomFlip(p=1.0), RandomRot90(), build_augmentation({"elastic": 1.0,
                                                                    "gamma": None,
                                                                    "noise": 0})):
        out = t(dict(sample), np.random.default_rng(1))
        np.testing.assert_allclose(out["target"][0], out["input"][0], atol=1e-6)
        np.testing.assert_allclose(out["target"][1], 2 * out["input"][0], atol=1e-5)


def test_intensity_augmentation_touches_input_only(rng):
    sample = {"input": rng.random((1, 4, 6, 6)).astype(np.float32),
              "target": rng.random((2, 4, 6, 6)).astype(np.float32)}
    out = RandomGamma((0.5, 0.6), p=1.0)(dict(sample), np.random.default_rng(0))
    assert np.array_equal(out["target"], sample["target"])
    assert (out["input"] >= sample["input"] - 1e-7).all()  # gamma < 1 brightens [0, 1]


def test_rare_targets_are_sampled_as_often_as_abundant_ones():
    from ri2fl.data import PairedVolume

    shape = (10, 40, 40)
    target = np.zeros((2, *shape), np.float32)
    target[0, :, :20] = 1.0            # abundant: half the volume
    target[1, 4:6, 30:32, 30:32] = 1.0  # rare: 8 voxels
    vol = PairedVolume(input=np.zeros((1, *shape), np.float32), target=target, path="x")
    ds = PatchDataset([vol], (4, 8, 8), n_patches=200, seed=0, foreground_p=1.0)
    hits = np.mean([bool(ds[i][1][1].max() > 0) for i in range(len(ds))])
    assert 0.35 < hits < 0.65  # one channel in two is the rare one


def test_manifest_weights_steer_which_field_patches_come_from(tmp_path):
    (tmp_path / "manifest.csv").write_text(
        "path,cell_type,seed,split,weight\na.h5,x,0,train,4\nb.h5,x,1,train,\n")
    weights = manifest_weights(tmp_path)
    assert sorted(weights.values()) == [1.0, 4.0]  # an empty cell means 1
    shape = (6, 16, 16)
    vols = [PairedVolume(input=np.full((1, *shape), i, np.float32),
                         target=np.zeros((1, *shape), np.float32), path=str(i),
                         weight=w) for i, w in enumerate((4.0, 1.0))]
    ds = PatchDataset(vols, (4, 8, 8), n_patches=400, seed=0, foreground_p=0.0)
    from_first = np.mean([float(ds[i][0].max()) == 0.0 for i in range(len(ds))])
    assert 0.72 < from_first < 0.88  # 4 : 1


def test_manifest_without_weights_or_with_bad_ones(tmp_path, paired_folder):
    assert manifest_weights(paired_folder) == {}
    assert manifest_weights(tmp_path / "plain_folder") == {}
    (tmp_path / "manifest.csv").write_text("path,split,weight\na.h5,train,-1\n")
    with pytest.raises(ConfigError, match="not a number >= 0"):
        manifest_weights(tmp_path)
    vol = PairedVolume(input=np.zeros((1, 4, 8, 8), np.float32),
                       target=np.zeros((1, 4, 8, 8), np.float32), path="x", weight=0.0)
    with pytest.raises(ConfigError, match="weight 0"):
        PatchDataset([vol], (4, 8, 8), n_patches=1)


def test_tcf_with_3dfl_is_read_onto_the_ri_grid(paired_folder, tmp_path):
    tcf = pytest.importorskip("ri2fl.io.tcf")
    from ri2fl.io import read_paired

    sample = read_paired(paired_folder / "fov_0.h5")
    counts = np.round(sample.fl["nucleus"][2:10] * 1000).astype(np.uint16)  # FL covers z 2..9
    path = tcf.write_tcf(tmp_path / "cell.TCF", sample.ri, sample.voxel_size_um,
                         fl={"nucleus": counts}, fl_voxel_size_um=sample.voxel_size_um,
                         fl_offset_z_um=2 * sample.voxel_size_um[0])
    vol = load_pair(path, ["nucleus"], fl_scale=1000.0)
    assert vol.input.shape == (1, *sample.ri.shape)
    np.testing.assert_allclose(vol.target[0, 3:9], sample.fl["nucleus"][3:9], atol=2e-3)
    assert (vol.target[0, :2] < 0).all()  # outside the FL stack: unregistered
    # patches avoid unregistered voxels: encode z in the input to see where they were cut
    registered = np.flatnonzero((vol.target[0] >= 0).all(axis=(1, 2)))
    vol.input[:] = np.arange(vol.input.shape[1], dtype=np.float32)[:, None, None]
    ds = PatchDataset([vol], (4, 16, 16), n_patches=6, foreground_p=0.0)
    for i in range(6):
        z = ds[i][0].numpy()
        assert registered.min() <= z.min() and z.max() <= registered.max()


def test_target_variances_pool_volumes_and_skip_unregistered_voxels():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (2, 4, 5, 6)), rng.normal(3, 2, (2, 4, 5, 6))
    b[1, 0] = -1.0  # unregistered (NaN on disk) is stored as -1 and must not count
    volumes = [PairedVolume(input=np.zeros((1, 4, 5, 6)), target=t, path="", cell_type="x")
               for t in (a, b)]
    variances = target_variances(volumes)
    assert variances[0] == pytest.approx(np.var(np.concatenate([a[0].ravel(), b[0].ravel()])))
    assert variances[1] == pytest.approx(np.var(np.concatenate([a[1].ravel(),
                                                                b[1, 1:].ravel()])))


def test_empty_medium_patches_are_tomograph_noise_around_zero():
    source = EmptyMediumPatches((0.4, 0.3, 0.3))
    a = source((8, 24, 24), np.random.default_rng(0))
    assert a.shape == (1, 8, 24, 24) and a.dtype == np.float32
    # RI within a few 1e-3 of the medium: at most a few percent of the [0, 1] input range
    assert a.min() >= 0.0 and a.max() < 0.2 and a.mean() < 0.05
    assert np.array_equal(a, source((8, 24, 24), np.random.default_rng(0)))
    assert not np.array_equal(a, source((8, 24, 24), np.random.default_rng(1)))
    # noise, not a constant: the network must learn that noise alone means no cell
    assert a.std() > 1e-3


def test_empty_patches_are_mixed_in_with_zero_targets(paired_folder):
    vols = [load_pair(p, ["membrane", "nucleus"])
            for p, _ in list_samples(paired_folder, "train")]
    plain = PatchDataset(vols, (6, 12, 12), n_patches=40, seed=3)
    mixed = PatchDataset(vols, (6, 12, 12), n_patches=40, seed=3, empty_p=0.5,
                         empty_source=lambda shape, rng: np.full((1, *shape), 0.01, np.float32))
    empty = [i for i in range(40) if np.allclose(mixed[i][0].numpy(), 0.01)]
    assert 10 < len(empty) < 30
    assert all(mixed[i][1].shape == (2, 6, 12, 12) and not mixed[i][1].any() for i in empty)
    # without empty patches the draws are those of the dataset before the option existed
    again = PatchDataset(vols, (6, 12, 12), n_patches=40, seed=3, empty_p=0.0)
    assert all(np.array_equal(plain[i][0], again[i][0]) for i in range(40))
    with pytest.raises(ConfigError, match="empty_source"):
        PatchDataset(vols, (6, 12, 12), n_patches=4, empty_p=0.2)


def test_structure_sampling_centres_small_structures_as_often_as_large_ones():
    from ri2fl.data import PairedVolume

    shape = (12, 48, 48)
    target = np.zeros((1, *shape), np.float32)
    target[0, 2:10, 4:28, 4:28] = 1.0   # one large structure: 4608 voxels
    target[0, 6, 40, 40] = 1.0          # one droplet of a single voxel
    vol = PairedVolume(input=np.zeros((1, *shape), np.float32), target=target, path="x")
    kwargs = {"n_patches": 300, "seed": 0, "foreground_p": 1.0}

    def small_centred(ds):
        return np.mean([bool(ds[i][1][0, :, :, :].sum() < 50) for i in range(len(ds))])

    by_voxel = small_centred(PatchDataset([vol], (4, 8, 8), **kwargs))
    by_structure = small_centred(PatchDataset([vol], (4, 8, 8), sampling="structures", **kwargs))
    assert by_voxel < 0.02          # 1 voxel in 4609
    assert 0.35 < by_structure < 0.65  # one structure in two


def test_unknown_sampling_is_a_config_error():
    from ri2fl.data import PairedVolume
    from ri2fl.errors import ConfigError

    vol = PairedVolume(input=np.zeros((1, 4, 8, 8), np.float32),
                       target=np.zeros((1, 4, 8, 8), np.float32), path="x")
    with pytest.raises(ConfigError, match="sampling"):
        PatchDataset([vol], (4, 8, 8), n_patches=1, sampling="cells")
