"""Device and precision choice; the inference copy of a model computes the same thing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ri2fl.errors import ConfigError
from ri2fl.infer.device import (
    InstanceNormCL,
    choose_device,
    choose_precision,
    cpu_has_fast_bf16,
    make_runner,
)


def test_instance_norm_replacement_is_exact_in_both_memory_formats():
    torch.manual_seed(0)
    ref = nn.InstanceNorm3d(5, affine=True)
    ref.weight.data.uniform_(0.5, 2)
    ref.bias.data.uniform_(-1, 1)
    x = torch.randn(2, 5, 6, 7, 8) * 3 + 1
    mine = InstanceNormCL(ref)
    torch.testing.assert_close(mine(x), ref(x), atol=1e-5, rtol=1e-5)
    xcl = x.contiguous(memory_format=torch.channels_last_3d)
    y = mine(xcl)
    assert y.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(y, ref(x), atol=1e-5, rtol=1e-5)


def test_runner_matches_the_model_and_leaves_it_untouched(rng):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), nn.InstanceNorm3d(3, affine=True),
                        nn.LeakyReLU(0.01), nn.Conv3d(3, 2, 1)).eval()
    x = rng.random((2, 1, 6, 10, 10), dtype=np.float32)
    runner = make_runner(net, device="cpu", precision="fp32")
    with torch.no_grad():
        expected = net(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(runner(x), expected, atol=1e-5)
    assert isinstance(net[1], nn.InstanceNorm3d)  # the caller's model is not modified
    assert isinstance(runner.model[1], InstanceNormCL)


def test_precision_choice():
    cpu = torch.device("cpu")
    assert choose_precision(cpu, "fp32") == torch.float32
    expected = torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    assert choose_precision(cpu, "auto") == expected
    with pytest.raises(ConfigError):
        choose_precision(cpu, "fp8")


def test_device_choice_is_explicit_about_missing_cuda():
    assert choose_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert choose_device(None).type == "cpu"
        with pytest.raises(ConfigError, match="CUDA"):
            choose_device("cuda")
