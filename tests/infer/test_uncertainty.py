"""TTA and MC dropout: exact inverses, passes that really differ, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from ri2fl.errors import ConfigError, ModelError
from ri2fl.infer.device import make_runner
from ri2fl.infer.uncertainty import ensemble_fn, mc_dropout, tta_augmentations


def test_tta_inverses_are_exact_so_an_identity_fn_has_zero_sd(rng):
    batch = rng.random((2, 1, 6, 8, 8), dtype=np.float32)
    ens = ensemble_fn(lambda b: b, tta=16, perturb=False)
    out = ens(batch)
    assert out.shape == (2, 2, 6, 8, 8)
    np.testing.assert_array_equal(out[:, :1], batch)
    assert np.abs(out[:, 1:]).max() == 0


def test_tta_transforms_reach_the_network_and_come_back(rng):
    batch = rng.random((1, 1, 4, 6, 6), dtype=np.float32)
    seen = []

    def fn(b):
        seen.append(b.copy())
        return b + np.arange(b.shape[-1], dtype=np.float32)  # depends on the x direction

    out = ensemble_fn(fn, tta=4, perturb=False)(batch)
    assert not all(np.array_equal(s, batch) for s in seen)  # the network saw transforms
    assert out[0, 1].max() > 0  # a direction-dependent fn is not invariant: sd > 0


def test_perturbations_are_in_the_list_and_non_square_patches_skip_quarter_turns():
    augs = tta_augmentations(8)
    assert {a.gamma for a in augs} >= {0.8, 1.2} and any(a.noise for a in augs)
    assert all(a.rot % 2 == 0 for a in tta_augmentations(8, square=False))
    with pytest.raises(ConfigError):
        tta_augmentations(1)


def test_non_square_patch_batches_work(rng):
    batch = rng.random((1, 1, 4, 6, 10), dtype=np.float32)
    out = ensemble_fn(lambda b: b, tta=8, perturb=False)(batch)
    np.testing.assert_allclose(out[:, 0], batch[:, 0], atol=1e-6)


def test_mc_dropout_passes_differ_and_modes_are_restored(tiny_net, rng):
    norm = nn.InstanceNorm3d(1)
    tiny_net.norm = norm
    tiny_net.eval()
    runner = make_runner(tiny_net, device="cpu", precision="fp32", optimize=False)
    batch = rng.random((2, 1, 8, 16, 16), dtype=np.float32)
    out = ensemble_fn(runner, mc=4)(batch)
    assert out.shape == (2, 4, 8, 16, 16)
    assert out[:, 2:].mean() > 1e-3  # dropout really sampled
    net = runner.model
    assert not net.training and not net.norm.training
    with mc_dropout(net):
        a, b = runner(batch), runner(batch)
        assert not net.norm.training
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(runner(batch), runner(batch))  # eval again: deterministic


def test_mc_without_dropout_is_an_error_not_silence():
    net = nn.Conv3d(1, 1, 1)
    with pytest.raises(ModelError, match="no dropout"):
        ensemble_fn(make_runner(net, device="cpu", precision="fp32"), mc=4)


def test_final_mean_is_the_mean_of_the_two_means(tiny_net, rng):
    runner = make_runner(tiny_net, device="cpu", precision="fp32")
    batch = rng.random((1, 1, 8, 16, 16), dtype=np.float32)
    both = ensemble_fn(runner, tta=3, mc=3, seed=5)(batch)
    tta = ensemble_fn(runner, tta=3, seed=5)(batch)
    mc = ensemble_fn(runner, mc=3, seed=5)(batch)  # same seed: same dropout masks
    assert both.shape[1] == 3 * 2  # mean, data s.d., model s.d. of two targets
    np.testing.assert_allclose(both[:, :2], (tta[:, :2] + mc[:, :2]) / 2, atol=1e-5)
    np.testing.assert_allclose(both[:, 2:4], tta[:, 2:4], atol=1e-5)
    np.testing.assert_allclose(both[:, 4:], mc[:, 2:], atol=1e-5)
    assert not np.allclose(tta[:, :2], mc[:, :2])
