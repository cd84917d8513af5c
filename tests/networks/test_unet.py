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


def _pointwise_unet(spatial_dims: int, levels: int, up_weight: float) -> UNet:
    """A one-channel UNet whose 3x3 convolutions use only their centre tap, so every layer is pointwise.

    Encoders and the head pass their input through (for non-negative inputs, ReLU is the identity), each transposed
    convolution is a nearest-neighbour 2x upsampling, and each decoder returns ``skip + up_weight * upsampled``.
    """
    net = UNet(spatial_dims=spatial_dims, in_channels=1, out_channels=1, channels=(1,) * levels, norm=None)
    centre = (1,) * spatial_dims
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        for encoder in net.encoders:
            encoder[0].weight[(0, 0, *centre)] = 1.0
            encoder[3].weight[(0, 0, *centre)] = 1.0
        for decoder in net.decoders:
            decoder.up.weight.fill_(1.0)
            decoder.conv[0].weight[(0, 0, *centre)] = 1.0  # input channel 0: the encoder feature map (the skip)
            decoder.conv[0].weight[(0, 1, *centre)] = up_weight  # input channel 1: the upsampled decoder path
            decoder.conv[3].weight[(0, 0, *centre)] = 1.0
        net.head.weight.fill_(1.0)
    return net.eval()


@pytest.mark.parametrize(
    "x,expected",
    [
        # e0 = x, e1 = maxpool(x) = [5, 2], bottleneck = [5]; d1 = e1 + 10 * [5, 5] = [55, 52];
        # d0 = e0 + 10 * [55, 55, 52, 52]: hundreds = bottleneck, tens = level-1 skip, ones = level-0 skip
        ([1.0, 5.0, 2.0, 0.0], [551.0, 555.0, 522.0, 520.0]),
        # e1 = [3, 7], bottleneck = [7]; d1 = [73, 77]; d0 = x + 10 * [73, 73, 77, 77]
        ([0.0, 3.0, 7.0, 1.0], [730.0, 733.0, 777.0, 771.0]),
    ],
    ids=["a", "b"],
)
def test_each_decoder_concatenates_its_own_skip_then_the_upsampled_path(x, expected):
    net = _pointwise_unet(spatial_dims=1, levels=3, up_weight=10.0)
    out = net(torch.tensor(x)[None, None])
    torch.testing.assert_close(out[0, 0], torch.tensor(expected))


@pytest.mark.parametrize(
    "spatial_dims,shape",
    [(1, (13,)), (2, (13, 13)), (2, (37, 50)), (2, (1, 1)), (2, (5, 18)), (3, (9, 16, 13))],
    ids=["1d-13", "2d-13", "2d-37x50", "2d-1px", "2d-5x18", "3d-odd"],
)
def test_skip_path_returns_the_input_pixel_for_pixel_at_any_size(spatial_dims, shape):
    # with the upsampled path switched off the network is the identity through the skips, so the output must be the
    # input itself: any misaligned pad or crop shifts it, and the finest detail (one pixel) can only come from a skip
    net = _pointwise_unet(spatial_dims=spatial_dims, levels=3, up_weight=0.0)
    x = torch.rand(1, 1, *shape)
    x.view(-1)[x.numel() // 2] = 7.0
    torch.testing.assert_close(net(x), x)


def test_padding_is_cropped_from_the_end():
    # 3 is padded to 4 with a zero at the end: [1, 5, 2, 0] -> [551, 555, 522, 520] (see the test above), cropped to 3
    net = _pointwise_unet(spatial_dims=1, levels=3, up_weight=10.0)
    torch.testing.assert_close(net(torch.tensor([[[1.0, 5.0, 2.0]]])), torch.tensor([[[551.0, 555.0, 522.0]]]))


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
