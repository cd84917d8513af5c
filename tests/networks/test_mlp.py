from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medkit.networks import MLP, Linear


@pytest.mark.parametrize("fan_in,fan_out", [(784, 512), (1000, 1000), (2048, 256)], ids=["784x512", "1k-sq", "2k-256"])
def test_linear_glorot_normal_init(fan_in, fan_out):
    layer = Linear(fan_in, fan_out)
    expected = math.sqrt(2.0 / (fan_in + fan_out))
    std = layer.weight.std().item()
    assert abs(std - expected) / expected < 0.10
    assert abs(layer.weight.mean().item()) < 0.05 * expected
    assert torch.count_nonzero(layer.bias) == 0
    assert layer.weight.shape == (fan_out, fan_in)


def test_linear_computes_affine_map():
    layer = Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]))
        layer.bias.copy_(torch.tensor([0.5, -0.5]))
    out = layer(torch.tensor([[1.0, 1.0, 2.0]]))
    torch.testing.assert_close(out, torch.tensor([[9.5, -0.5]]))
    no_bias = Linear(4, 3, bias=False)
    assert no_bias.bias is None
    x = torch.randn(5, 4)
    torch.testing.assert_close(no_bias(x), F.linear(x, no_bias.weight))


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        ({"in_shape": (1, 28, 28)}, (4, 1, 28, 28)),
        ({"in_features": 63}, (2, 63)),
        ({"in_shape": (3, 5, 7), "hidden_channels": ()}, (1, 3, 5, 7)),
        ({"in_features": 12, "in_shape": (3, 4), "hidden_channels": (9, 7, 5)}, (3, 3, 4)),
    ],
    ids=["mnist-image", "flat", "logistic", "both-args"],
)
def test_output_shape(kwargs, shape):
    net = MLP(out_channels=6, **kwargs)
    assert net(torch.randn(*shape)).shape == (shape[0], 6)


def test_uses_medkit_linear_layers_with_glorot_bias():
    net = MLP(in_features=20, out_channels=3, hidden_channels=(16, 8))
    linears = [m for m in net.modules() if isinstance(m, Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 16), (16, 8), (8, 3)]
    assert not any(isinstance(m, torch.nn.Linear) for m in net.modules())
    assert all(torch.count_nonzero(m.bias) == 0 for m in linears)


@pytest.mark.parametrize(
    "act,cls", [("relu", torch.nn.ReLU), ("tanh", torch.nn.Tanh), ("Sigmoid", torch.nn.Sigmoid)], ids=str
)
def test_activation_choice(act, cls):
    net = MLP(in_features=4, hidden_channels=(3, 3), act=act, dropout=0.2)
    assert sum(isinstance(m, cls) for m in net.modules()) == 2
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 2
    assert not isinstance(net.layers[-1], cls), "the network must end in logits"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"in_features": 4, "act": "gelu"}, "'gelu'"),
        ({}, "in_features"),
        ({"in_features": 5, "in_shape": (2, 2)}, "in_features=5"),
        ({"in_shape": (2, 0)}, r"\(2, 0\)"),
        ({"in_features": 4, "hidden_channels": (8, 0)}, r"\(8, 0\)"),
        ({"in_features": 4, "dropout": 1.0}, "dropout"),
    ],
    ids=["unknown-act", "no-input-size", "disagreeing-sizes", "zero-shape", "zero-width", "dropout"],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


def test_wrong_input_size_names_shape():
    with pytest.raises(ValueError, match=r"2, 1, 5, 5"):
        MLP(in_shape=(1, 4, 4))(torch.randn(2, 1, 5, 5))


def test_torchscript_matches_eager():
    net = MLP(in_shape=(1, 6, 6), act="tanh").eval()
    x = torch.randn(3, 1, 6, 6)
    torch.testing.assert_close(torch.jit.script(net)(x), net(x))
