from __future__ import annotations

import pytest
import torch

from medkit.inferers import AutocastInferer, use_cpu_bf16


def test_autocast_runs_bf16_and_returns_float32():
    seen = {}

    def net(x):
        y = torch.nn.functional.linear(x, torch.ones(2, 3))
        seen["dtype"] = y.dtype
        return y

    out = AutocastInferer(enabled=True)(torch.ones(4, 3), net)
    assert seen["dtype"] == torch.bfloat16 and out.dtype == torch.float32
    out = AutocastInferer(enabled=False)(torch.ones(4, 3), net)
    assert seen["dtype"] == torch.float32 and out.dtype == torch.float32


def test_gradients_flow_through_autocast():
    lin = torch.nn.Linear(3, 1)
    AutocastInferer(enabled=True)(torch.ones(2, 3), lin).sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.dtype == torch.float32


def test_use_cpu_bf16_switch():
    assert use_cpu_bf16("cpu", True) is True
    assert use_cpu_bf16("cpu", False) is False
    assert use_cpu_bf16("cuda", True) is False
    assert isinstance(use_cpu_bf16("cpu", "auto"), bool)
    # a command line gives strings: --cpu_bf16 false must switch it off, like every other medkit flag
    assert use_cpu_bf16("cpu", "false") is False and use_cpu_bf16("cpu", "True") is True
    with pytest.raises(ValueError, match="cpu_bf16 must be true, false or auto, got 'maybe'"):
        use_cpu_bf16("cpu", "maybe")


def test_memory_format_applies_to_4d_inputs_only():
    seen = []

    def net(x):
        seen.append(x.is_contiguous(memory_format=torch.channels_last))
        return x.flatten(1)[:, :1]

    inferer = AutocastInferer(enabled=False, memory_format=torch.channels_last)
    inferer(torch.ones(2, 3, 4, 5), net)
    assert seen == [True]
    assert AutocastInferer(enabled=False, memory_format=torch.channels_last)(torch.ones(2, 3), lambda x: x).shape == (
        2,
        3,
    )


def test_flip_tta_inferer_scores_like_the_wrapped_network_and_keeps_it_plain():
    from medkit.inferers import FlipTTAInferer
    from medkit.networks import FlipTTA

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    x = torch.randn(3, 1, 8, 6)
    expected = FlipTTA(net, (1, (0, 1)))(x)
    torch.testing.assert_close(FlipTTAInferer((1, (0, 1)))(x, net), expected)
    assert not torch.allclose(expected, net(x))  # the flips changed the scores
    assert list(net.state_dict()) == ["0.weight", "0.bias"]  # nothing wraps the network's parameters
