from __future__ import annotations

import pytest
import torch

from medkit.networks import NETWORKS, UNet, get_network

SMALL = (4, 8, 16)


@pytest.mark.parametrize(
    "spatial_dims,shape",
    [
        (2, (2, 1, 64, 64)),
        (2, (1, 1, 37, 50)),
        (2, (3, 1, 1, 1)),
        (2, (1, 1, 255, 17)),
        (3, (1, 1, 9, 16, 13)),
        (1, (2, 1, 30)),
    ],
    ids=["2d-64", "2d-odd", "2d-1px", "2d-tall", "3d-odd", "1d"],
)
@pytest.mark.parametrize("skip", [True, False], ids=["skip", "noskip"])
def test_output_shape_matches_input(spatial_dims, shape, skip):
    net = UNet(spatial_dims=spatial_dims, in_channels=1, out_channels=3, channels=SMALL, skip_connections=skip)
    out = net(torch.randn(*shape))
    assert out.shape == (shape[0], 3, *shape[2:])


def test_default_channels_and_multichannel_input():
    net = UNet(in_channels=3, out_channels=2)
    assert net.divisor == 16
    assert net(torch.randn(1, 3, 40, 24)).shape == (1, 2, 40, 24)


def test_skip_connections_change_the_network():
    with_skip = UNet(channels=SMALL)
    without = UNet(channels=SMALL, skip_connections=False)
    n_with = sum(p.numel() for p in with_skip.parameters())
    n_without = sum(p.numel() for p in without.parameters())
    # the first conv of each decoder block sees twice the channels when skips are concatenated
    assert n_with > n_without
    assert without.decoders[0].conv[0].in_channels == 8
    assert with_skip.decoders[0].conv[0].in_channels == 16


def test_skip_connection_carries_fine_detail():
    """With skips, the output depends on full-resolution encoder features; without, only through the bottleneck."""
    torch.manual_seed(0)
    net = UNet(channels=SMALL, norm=None).eval()
    x = torch.zeros(1, 1, 16, 16, requires_grad=True)
    net(x)[0, 0, 0, 0].backward()
    assert x.grad.abs().sum() > 0


def test_padding_does_not_leak_into_output():
    net = UNet(channels=SMALL, norm=None).eval()
    x = torch.randn(1, 1, 13, 13)
    y = net(x)
    assert torch.isfinite(y).all() and y.shape == (1, 1, 13, 13)


def test_gradients_reach_every_parameter():
    net = UNet(channels=SMALL, dropout=0.1)
    net(torch.randn(2, 1, 32, 32)).mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("norm", ["batch", "instance", None])
def test_norm_options(norm):
    assert UNet(channels=SMALL, norm=norm)(torch.randn(2, 1, 16, 16)).shape == (2, 1, 16, 16)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"channels": (8,)}, "channels"),
        ({"channels": (8, 0)}, "channels"),
        ({"norm": "group"}, "norm"),
        ({"dropout": 1.5}, "dropout"),
        ({"in_channels": 0}, "in_channels"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet(**kwargs)


def test_wrong_input_rank_names_shape():
    with pytest.raises(ValueError, match=r"1, 16, 16"):
        UNet(channels=SMALL)(torch.randn(1, 16, 16))


def test_registry_builds_unet():
    assert "unet" in NETWORKS
    net = get_network("unet", channels=SMALL)
    assert isinstance(net, UNet)
    with pytest.raises(ValueError, match="unknown network 'nope'"):
        get_network("nope")


def test_torchscript_matches_eager():
    net = UNet(channels=SMALL).eval()
    x = torch.randn(1, 1, 20, 28)
    scripted = torch.jit.script(net)
    torch.testing.assert_close(scripted(x), net(x))


@pytest.mark.parametrize("flag", ["false", "False", "0"], ids=["false", "False", "0"])
def test_skip_connections_flag_from_the_command_line(flag):
    # `--network_def#skip_connections false` reaches the constructor as the string 'false'
    assert UNet(channels=(4, 8), skip_connections=flag).skip_connections is False
