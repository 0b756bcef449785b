"""The fused per-patch path equals the straightforward NumPy ensemble around the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ri2fl.infer import make_runner, predict_volume
from ri2fl.infer.fused import FusedPredictor, _box_image, _inverse, _Welford, predict_fused
from ri2fl.infer.tiling import predict_tiled
from ri2fl.infer.uncertainty import Augmentation, ensemble_fn, tta_augmentations
from ri2fl.models import RefinedUNet3D


def _refined(dropout: float = 0.0) -> RefinedUNet3D:
    torch.manual_seed(0)
    net = RefinedUNet3D(base={"features": 4, "depth": 2, "dropout": 0.2}, layers=3,
                        features=4, refine_channels=[1, 2], dropout=dropout).eval()
    with torch.no_grad():  # a head that changes the output (an untrained one is zero)
        for p in net.head[-1].parameters():
            p.normal_(0, 0.3)
        net.base.head.bias.fill_(0.5)
    net.targets = ["membrane", "actin", "mitochondria", "lipid_droplets", "nucleus",
                   "nucleolus"]
    net.voxel_size_um = (0.2, 0.15, 0.15)
    return net


def _ri(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1.337 + 0.05 * rng.random(shape)).astype(np.float32)


def _reference(net, ri, tta, mc, patch, seed=0, batch=2) -> np.ndarray:
    """The textbook computation: normalise, NumPy ensemble, full network, NumPy blend."""
    from ri2fl.infer.engine import nonnegative
    from ri2fl.preprocess import normalize_ri

    runner = make_runner(net, device="cpu", precision="fp32")
    ens = ensemble_fn(nonnegative(runner), tta=tta, mc=mc, model=runner.model, seed=seed)
    return predict_tiled(lambda b: ens(normalize_ri(b)), ri, patch, overlap=0.25,
                         batch_size=batch)


@pytest.mark.parametrize(("tta", "mc"), [(0, 0), (4, 0), (0, 3), (5, 2)])
def test_fused_equals_the_reference_computation(tta, mc):
    net = _refined()
    ri = _ri((12, 40, 36))
    patch = (8, 24, 24)
    ref = _reference(net, ri, tta, mc, patch)
    runner = make_runner(net, device="cpu", precision="fp32")
    pred = FusedPredictor(runner, 6, tta=tta, mc=mc, medium_index=1.337, seed=0)
    fused = predict_fused(pred, ri, patch, overlap=0.25, batch_size=2)
    assert fused.shape == ref.shape
    np.testing.assert_allclose(fused, ref, rtol=1e-4, atol=1e-5)


def test_fused_slabs_of_any_size_give_the_same_field():
    net = _refined()
    ri = _ri((10, 50, 70), seed=1)
    runner = make_runner(net, device="cpu", precision="fp32")
    outs = []
    for slab_bytes in (0, 1 << 30):
        pred = FusedPredictor(runner, 6, tta=2, medium_index=1.337, seed=3)
        outs.append(predict_fused(pred, ri, (8, 24, 24), batch_size=3, slab_bytes=slab_bytes))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_predict_volume_fused_equals_reference_on_and_off_grid(tmp_path):
    import zarr

    net = _refined()
    ri = _ri((10, 40, 44), seed=2)
    for voxel in [(0.2, 0.15, 0.15), (0.25, 0.2, 0.15)]:
        kwargs = {"model": net, "tta": 3, "mc": 2, "targets": ["actin", "membrane"],
                  "device": "cpu", "precision": "fp32", "patch_size": (8, 24, 24),
                  "domain_check": False, "progress": False}
        ref = predict_volume(ri, voxel, fused=False, **kwargs)
        new = predict_volume(ri, voxel, **kwargs)
        for name, arr in ref.channels().items():
            np.testing.assert_allclose(new.channels()[name], arr, rtol=1e-4, atol=1e-5)
        out = zarr.create_array(tmp_path / f"{voxel[0]}.zarr", shape=(6, *ri.shape),
                                chunks=(1, 4, 16, 16), dtype="float32", fill_value=0)
        streamed = predict_volume(ri, voxel, out=out, scratch_dir=tmp_path, **kwargs)
        for name, arr in ref.channels().items():
            np.testing.assert_allclose(np.asarray(streamed.channels()[name]), arr, rtol=1e-4,
                                       atol=1e-5)


def test_plain_networks_run_whole_and_are_cropped(tiny_net):
    ri = _ri((9, 30, 20), seed=4)
    kwargs = {"model": tiny_net, "tta": 2, "mc": 2, "device": "cpu", "precision": "fp32",
              "domain_check": False, "progress": False}
    ref = predict_volume(ri, (0.2, 0.15, 0.15), fused=False, **kwargs)
    new = predict_volume(ri, (0.2, 0.15, 0.15), **kwargs)
    for name, arr in ref.channels().items():
        np.testing.assert_allclose(new.channels()[name], arr, rtol=1e-4, atol=1e-5)


def test_box_image_follows_every_augmentation():
    shape = (6, 10, 10)
    box = (slice(1, 4), slice(2, 9), slice(0, 5))
    mask = np.zeros((1, 1, *shape), np.float32)
    mask[(0, 0, *box)] = 1
    for aug in tta_augmentations(16, perturb=False):
        moved = aug.forward(mask, np.random.default_rng(0))[0, 0]
        zs, ys, xs = (np.flatnonzero(moved.any(axis=tuple(a for a in range(3) if a != k)))
                      for k in range(3))
        got = _box_image(aug, box, shape)
        assert got == (slice(zs[0], zs[-1] + 1), slice(ys[0], ys[-1] + 1),
                       slice(xs[0], xs[-1] + 1))


@pytest.mark.parametrize("rot", range(4))
@pytest.mark.parametrize(("flip_z", "flip_x"), [(False, False), (True, False), (False, True),
                                                (True, True)])
def test_inverse_undoes_every_augmentation_as_numpy_does(rot, flip_z, flip_x):
    aug = Augmentation(rot, flip_z, flip_x)
    y = np.random.default_rng(rot).random((2, 3, 4, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(_inverse(aug, torch.from_numpy(y.copy())).numpy(),
                                  aug.inverse(y))
    np.testing.assert_array_equal(aug.inverse(aug.forward(y, None)), y)


def test_running_mean_and_sd_equal_numpys_over_the_passes():
    passes = np.random.default_rng(1).normal(2.0, 0.5, (5, 3, 7)).astype(np.float32)
    stats = _Welford()
    for x in passes:
        stats.add(torch.from_numpy(x.copy()))
    np.testing.assert_allclose(stats.mean.numpy(), passes.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.sd().numpy(), passes.std(0), rtol=1e-4, atol=1e-6)


def test_refined_head_on_a_region_equals_the_whole_head():
    net = _refined(dropout=0.0)
    x = torch.rand(2, 1, 12, 30, 26)
    with torch.no_grad():
        whole = net(x)
        for box in [(slice(0, 12), slice(0, 30), slice(0, 26)),
                    (slice(2, 11), slice(7, 29), slice(0, 13)),
                    (slice(0, 1), slice(29, 30), slice(25, 26))]:
            for slab_voxels in (1 << 22, 500):
                part = net.forward_region(x, box, slab_voxels=slab_voxels)
                torch.testing.assert_close(part, whole[(slice(None), slice(None), *box)],
                                           rtol=1e-5, atol=1e-6)
