from __future__ import annotations

import pytest
import torch
import torchvision

from medkit.networks import ResNetUNet
from medkit.networks.resnet_unet import RESNET18_IMAGENET_FILE, RESNET18_IMAGENET_URL, resnet18_weights_path

SMALL = (4, 4, 8, 8, 16)


@pytest.fixture
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("medkit must never download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize(
    "in_channels,shape",
    [(1, (2, 1, 32, 32)), (3, (1, 3, 64, 96)), (1, (2, 1, 37, 45)), (3, (1, 3, 1, 5))],
    ids=["grey-32", "rgb-64x96", "odd", "tiny"],
)
@pytest.mark.parametrize("skip", [True, False], ids=["skips", "no-skips"])
def test_output_shape(in_channels, shape, skip):
    net = ResNetUNet(in_channels=in_channels, out_channels=2, channels=SMALL, skip_connections=skip).eval()
    assert net(torch.randn(*shape)).shape == (shape[0], 2, *shape[2:])


def test_skip_connections_change_the_decoder():
    with_skips = ResNetUNet(channels=SMALL)
    without = ResNetUNet(channels=SMALL, skip_connections=False)
    assert without.decoders[-1].conv[0].in_channels == 4 and with_skips.decoders[-1].conv[0].in_channels == 8
    assert isinstance(without.input_block, torch.nn.Identity)


def test_frozen_encoder_trains_the_decoder_only():
    net = ResNetUNet(in_channels=1, channels=SMALL, freeze_encoder=True).train()
    encoder = {id(p) for m in net.encoder_modules() for p in m.parameters()}
    assert encoder and not any(p.requires_grad for m in net.encoder_modules() for p in m.parameters())
    assert not any(m.training for e in net.encoder_modules() for m in e.modules())
    before = net.stem[1].running_mean.clone()
    net(torch.randn(2, 1, 32, 32)).mean().backward()
    assert torch.equal(net.stem[1].running_mean, before)  # batch-norm statistics stay ImageNet's
    assert all(p.grad is None for p in net.parameters() if id(p) in encoder)
    assert all(p.grad is not None for p in net.decoders.parameters())


def test_fine_tuning_updates_the_encoder():
    net = ResNetUNet(in_channels=1, channels=SMALL, freeze_encoder=False).train()
    net(torch.randn(2, 1, 32, 32)).mean().backward()
    assert net.stem[0].weight.grad is not None and net.layer4[1].conv2.weight.grad is not None


def test_loads_imagenet_file_from_torch_home(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    stock = torchvision.models.resnet18(weights=None).state_dict()
    # a distinct constant per tensor shows each one landed in the right place (integer buffers keep their dtype)
    fake = {k: torch.full_like(v, i) for i, (k, v) in enumerate(stock.items())}
    path = tmp_path / "hub" / "checkpoints" / RESNET18_IMAGENET_FILE
    path.parent.mkdir(parents=True)
    torch.save(fake, path)
    assert resnet18_weights_path() == path

    net = ResNetUNet(in_channels=3, channels=SMALL, weights="imagenet")
    index = {k: i for i, k in enumerate(stock)}
    assert torch.all(net.stem[0].weight == index["conv1.weight"])
    assert torch.all(net.stem[1].running_var == index["bn1.running_var"])
    assert torch.all(net.layer1[1][0].conv1.weight == index["layer1.0.conv1.weight"])
    assert torch.all(net.layer4[1].bn2.bias == index["layer4.1.bn2.bias"])


def test_missing_weights_file_says_where_to_put_it(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        ResNetUNet(weights="imagenet")
    message = str(info.value)
    expected = tmp_path / "hub" / "checkpoints" / RESNET18_IMAGENET_FILE
    assert str(expected) in message and RESNET18_IMAGENET_URL in message and "weights=None" in message


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"in_channels": 2}, "got 2"),
        ({"spatial_dims": 3}, "2D only"),
        ({"channels": (4, 8)}, "five"),
        ({"weights": "imagnet"}, "'imagnet'"),
    ],
    ids=["channels-in", "3d", "decoder-widths", "weights-typo"],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNetUNet(**kwargs)


def test_wrong_input_channels_names_shape():
    with pytest.raises(ValueError, match=r"2, 3, 32, 32"):
        ResNetUNet(in_channels=1, channels=SMALL)(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("flag", ["false", "False", "0", False], ids=["false", "False", "0", "bool"])
def test_string_flags_from_the_command_line(flag):
    net = ResNetUNet(channels=SMALL, skip_connections=flag, freeze_encoder=flag)
    assert net.skip_connections is False and net.freeze_encoder is False
