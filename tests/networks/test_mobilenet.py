from __future__ import annotations

import pytest
import torch

from medkit.networks import DepthwiseSeparableBlock, MobileNetV1


@pytest.mark.parametrize(
    "in_channels,shape",
    [(1, (2, 1, 28, 28)), (3, (2, 3, 64, 64)), (3, (1, 3, 224, 224)), (1, (2, 1, 33, 47)), (1, (2, 1, 1, 1))],
    ids=["28-grey", "64-rgb", "224-rgb", "odd", "1px"],
)
def test_output_shape(in_channels, shape):
    net = MobileNetV1(in_channels=in_channels, out_channels=7)
    assert net(torch.randn(*shape)).shape == (shape[0], 7)


def test_block_is_depthwise_then_pointwise():
    block = DepthwiseSeparableBlock(8, 16, stride=2)
    types = [type(m).__name__ for m in block]
    assert types == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU"]
    depthwise, pointwise = block[0], block[3]
    assert depthwise.groups == 8 and depthwise.kernel_size == (3, 3) and depthwise.stride == (2, 2)
    assert pointwise.kernel_size == (1, 1) and pointwise.out_channels == 16
    assert block(torch.randn(1, 8, 9, 10)).shape == (1, 16, 5, 5)


def test_body_follows_table_1_of_the_paper():
    net = MobileNetV1(in_channels=3, out_channels=1000)
    blocks = [m for m in net.features if isinstance(m, DepthwiseSeparableBlock)]
    assert [b[3].out_channels for b in blocks] == [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    assert [b[0].stride[0] for b in blocks] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert net.features[0].out_channels == 32 and net.features[0].stride == (2, 2)
    # Table 8 of the paper: 4.2 million parameters for 1.0 MobileNet-224 (this is the exact Keras count)
    assert sum(p.numel() for p in net.parameters()) == 4_231_976
    x = torch.randn(1, 3, 224, 224)
    assert net.features.eval()(x).shape == (1, 1024, 7, 7)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"in_channels": 0}, "in_channels"),
        ({"out_channels": 0}, "out_channels"),
        ({"dropout": -0.1}, "dropout"),
        ({"keep_resolution": 6}, r"keep_resolution must be in \[0, 5\], got 6"),
        ({"keep_resolution": -1}, "keep_resolution"),
    ],
    ids=["in", "out", "dropout", "keep-too-many", "keep-negative"],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MobileNetV1(**kwargs)


def test_wrong_channels_names_shape():
    with pytest.raises(ValueError, match=r"2, 3, 28, 28"):
        MobileNetV1(in_channels=1)(torch.randn(2, 3, 28, 28))


def test_dropout_is_off_in_eval_mode():
    net = MobileNetV1(in_channels=1, out_channels=3, dropout=0.5).eval()
    assert isinstance(net.dropout, torch.nn.Dropout)
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(net(x), net(x))


@pytest.mark.parametrize(
    "keep,final_map,strides",
    [
        (0, 1, (2, [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1])),
        (1, 2, (1, [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1])),
        (2, 4, (1, [1, 1, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1])),
        (5, 28, (1, [1] * 13)),
    ],
)
def test_keep_resolution_turns_the_first_stride_2_layers_to_stride_1(keep, final_map, strides):
    net = MobileNetV1(in_channels=1, out_channels=2, keep_resolution=keep)
    blocks = [m for m in net.features if isinstance(m, DepthwiseSeparableBlock)]
    assert (net.features[0].stride[0], [b[0].stride[0] for b in blocks]) == strides
    assert net.features.eval()(torch.randn(1, 1, 28, 28)).shape == (1, 1024, final_map, final_map)
    # same layers, same parameter count: a checkpoint loads into any keep_resolution
    net.load_state_dict(MobileNetV1(in_channels=1, out_channels=2).state_dict())
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 2)
