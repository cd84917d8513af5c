"""One parametrized test over every registered network: shapes, a backward pass and frozen parameters."""

from __future__ import annotations

import pytest
import torch

from medkit.networks import NETWORKS, get_network

# small constructor arguments and an input shape per network; a new network must add a row here
CASES = {
    "unet": ({"channels": (4, 8, 16), "out_channels": 2}, (2, 1, 20, 28), (2, 2, 20, 28)),
}


def test_every_registered_network_has_a_case():
    assert sorted(CASES) == sorted(NETWORKS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_backward_and_frozen_parameters(name):
    kwargs, in_shape, out_shape = CASES[name]
    net = get_network(name, **kwargs)
    out = net(torch.randn(*in_shape))
    assert out.shape == out_shape
    out.float().mean().backward()
    trainable = [p for p in net.parameters() if p.requires_grad]
    frozen = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad}
    assert trainable and all(p.grad is not None for p in trainable)
    torch.optim.SGD(trainable, lr=0.1).step()
    for n, p in net.named_parameters():
        if n in frozen:
            torch.testing.assert_close(p, frozen[n])
