"""Feature maps: layer counting, seeded channel choice, values equal to the conv outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medkit.interpret import conv_layer_names, feature_maps
from medkit.networks import MobileNetV1, VGGTransfer


@pytest.fixture(scope="module")
def vgg() -> VGGTransfer:
    return VGGTransfer(out_channels=2, weights=None)


def test_vgg16_conv_layers_1_5_10_are_conv1_1_conv3_1_conv4_3(vgg):
    net = vgg
    names = conv_layer_names(net)
    assert len(names) == 13
    assert [names[k - 1] for k in (1, 5, 10)] == ["features.0", "features.10", "features.21"]


def test_maps_are_the_conv_outputs_of_the_chosen_channels(vgg):
    net = vgg
    x = torch.rand(2, 3, 32, 32)
    result = feature_maps(net, x, layers=(1, 5, 10), num_channels=4, seed=3)
    assert [f.layer for f in result] == [1, 5, 10]
    assert [tuple(f.maps.shape) for f in result] == [(2, 4, 32, 32), (2, 4, 8, 8), (2, 4, 4, 4)]
    conv1 = net.features[0](x)
    torch.testing.assert_close(result[0].maps, conv1[:, result[0].channels].detach())
    again = feature_maps(net, x, layers=(1, 5, 10), num_channels=4, seed=3)
    assert [f.channels for f in again] == [f.channels for f in result]
    other = feature_maps(net, x, layers=(1, 5, 10), num_channels=4, seed=4)
    assert [f.channels for f in other] != [f.channels for f in result]
    assert all(len(set(f.channels)) == 4 for f in result)
    assert not any(m._forward_hooks for m in net.modules())


def test_any_cnn_and_fewer_channels_than_asked():
    net = MobileNetV1(in_channels=1, out_channels=3)
    tiny = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    tiny(torch.zeros(1, 1, 7, 9))
    assert [f.maps.shape[1] for f in feature_maps(tiny, torch.rand(1, 1, 7, 9), layers=(1,))] == [2]
    result = feature_maps(net, torch.rand(1, 1, 64, 64), layers=(2, 27))
    assert result[1].name == conv_layer_names(net)[-1]


def test_out_of_range_layer_names_the_count(vgg):
    with pytest.raises(ValueError, match="has 13 nn.Conv2d"):
        feature_maps(vgg, torch.rand(1, 3, 32, 32), layers=(1, 14))
