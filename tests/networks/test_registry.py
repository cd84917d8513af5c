"""One sweep over every registered network: output shape, backward pass, frozen parameters, TorchScript."""

from __future__ import annotations

import pytest
import torch

from medkit.networks import NETWORKS, get_network

# name -> (builder kwargs, input shape, expected output shape); small inputs keep the sweep fast
CASES: dict[str, tuple[dict, tuple[int, ...], tuple[int, ...]]] = {
    "unet": ({"channels": (4, 8, 16), "out_channels": 2}, (2, 1, 19, 24), (2, 2, 19, 24)),
    "vgg_transfer": ({"in_channels": 1, "out_channels": 3, "weights": None}, (2, 1, 32, 32), (2, 3)),
    "mobilenet_v1": ({"in_channels": 1, "out_channels": 4}, (2, 1, 28, 28), (2, 4)),
    "mlp": ({"in_shape": (1, 9, 7), "out_channels": 5, "hidden_channels": (16, 8)}, (2, 1, 9, 7), (2, 5)),
    "bilstm": ({"out_channels": 3, "hidden_dim": 8}, (2, 13, 4), (2, 3)),
    "danq": ({"out_channels": 3, "conv_channels": 6, "kernel_size": 5, "hidden_dim": 8}, (2, 13, 4), (2, 3)),
    "resnet_unet": ({"in_channels": 1, "channels": (4, 4, 8, 8, 16)}, (2, 1, 35, 40), (2, 1, 35, 40)),
    "munet": ({"channels": (4, 8), "depth": 4, "out_channels": 6}, (2, 3, 21, 18), (2, 6, 21, 18)),
}


def _trainable(net: torch.nn.Module) -> list[torch.nn.Parameter]:
    if hasattr(net, "trainable_parameters"):
        return list(net.trainable_parameters())
    return [p for p in net.parameters() if p.requires_grad]


def test_every_registered_network_has_a_case():
    assert sorted(CASES) == sorted(NETWORKS), "add a row to CASES for each newly registered network"


@pytest.mark.parametrize("name", sorted(CASES), ids=sorted(CASES))
def test_shape_backward_and_frozen_parameters(name):
    kwargs, in_shape, out_shape = CASES[name]
    net = get_network(name, **kwargs).train()
    trainable = _trainable(net)
    trainable_ids = {id(p) for p in trainable}
    frozen = {n: p.detach().clone() for n, p in net.named_parameters() if id(p) not in trainable_ids}
    before = [p.detach().clone() for p in trainable]
    assert all(not net.get_parameter(n).requires_grad for n in frozen), "frozen parameters must not require grad"

    out = net(torch.randn(*in_shape))
    assert out.shape == out_shape
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    out.float().pow(2).mean().backward()
    assert all(p.grad is not None for p in trainable)
    optimizer.step()

    for n, value in frozen.items():
        assert net.get_parameter(n).grad is None
        assert torch.equal(net.get_parameter(n), value), f"frozen parameter {n} changed"
    assert any(not torch.equal(p, b) for p, b in zip(trainable, before)), "the optimizer step changed nothing"


@pytest.mark.parametrize("name", sorted(CASES), ids=sorted(CASES))
def test_torchscript_matches_eager(name):
    kwargs, in_shape, _ = CASES[name]
    net = get_network(name, **kwargs).eval()
    x = torch.randn(*in_shape)
    torch.testing.assert_close(torch.jit.script(net)(x), net(x))
