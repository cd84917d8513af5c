from __future__ import annotations

import pytest
import torch
import torchvision

from medkit.networks import VGGTransfer
from medkit.networks.vgg import VGG16_IMAGENET_FILE, VGG16_IMAGENET_URL, vgg16_weights_path


@pytest.fixture(scope="module")
def grey_net() -> VGGTransfer:
    """One shared frozen network for the tests that do not change its parameters (building VGG16 takes seconds)."""
    torch.manual_seed(0)
    return VGGTransfer(in_channels=1, out_channels=3, weights=None)


@pytest.fixture
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("medkit must never download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (1, 1, 64, 64), (2, 1, 37, 45)], ids=["32", "64", "odd"])
def test_output_shape(grey_net, shape):
    assert grey_net.eval()(torch.randn(*shape)).shape == (shape[0], 3)


def test_only_the_head_is_trainable(grey_net):
    head = {id(p) for p in grey_net.head.parameters()}
    assert {id(p) for p in grey_net.trainable_parameters()} == head
    assert [tuple(p.shape) for p in grey_net.trainable_parameters()] == [(2048, 4096), (2048,), (3, 2048), (3,)]
    assert not any(p.requires_grad for p in grey_net.features.parameters())
    assert not any(p.requires_grad for p in grey_net.classifier.parameters())


def test_train_mode_keeps_frozen_part_in_eval(grey_net):
    grey_net.train()
    assert grey_net.training and grey_net.head.training
    assert not any(m.training for m in grey_net.features.modules())
    assert not any(m.training for m in grey_net.classifier.modules())
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(grey_net(x), grey_net(x))  # VGG's own dropout layers stay off
    grey_net.eval()


def test_frozen_forward_records_no_graph_through_vgg(grey_net):
    seen = []
    handle = grey_net.classifier.register_forward_hook(lambda m, i, o: seen.append((torch.is_grad_enabled(), o)))
    try:
        out = grey_net.train()(torch.randn(2, 1, 32, 32))
    finally:
        handle.remove()
        grey_net.eval()
    grad_enabled, feats = seen[0]
    assert not grad_enabled and feats.grad_fn is None
    assert out.requires_grad  # the head still trains


def test_input_gradient_for_saliency_maps(grey_net):
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    grey_net.eval()(x)[0, 1].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in grey_net.features.parameters())
    grey_net.zero_grad(set_to_none=True)


def test_grey_input_equals_repeated_rgb(grey_net):
    net = grey_net.eval()
    x = torch.randn(2, 1, 32, 32)
    rgb_features = net.avgpool(net.features(x.repeat(1, 3, 1, 1))).flatten(1)
    torch.testing.assert_close(net(x), net.head(net.classifier(rgb_features)))


def test_unfrozen_fine_tunes_everything():
    net = VGGTransfer(out_channels=2, weights=None, freeze=False).train()
    assert len(net.trainable_parameters()) == len(list(net.parameters()))
    assert net.features.training and net.classifier.training
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert net.features[0].weight.grad is not None


def test_last_layer_only_is_stock_vgg16_with_a_fresh_last_layer():
    net = VGGTransfer(out_channels=10, weights=None, last_layer_only=True)
    with torch.device("meta"):
        stock = torchvision.models.vgg16(weights=None)
    assert isinstance(net.head, torch.nn.Linear) and net.head.in_features == 4096
    assert [tuple(p.shape) for p in net.trainable_parameters()] == [(10, 4096), (10,)]
    ours = [tuple(p.shape) for p in net.parameters()]
    assert ours[:-2] == [tuple(p.shape) for p in stock.parameters()][:-2]
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_last_layer_only_unfrozen_is_stock_vgg16_trained_end_to_end():
    net = VGGTransfer(out_channels=10, weights=None, last_layer_only=True, freeze=False).train()
    assert len(net.trainable_parameters()) == len(list(net.parameters())) == 32  # VGG16's 16 weight layers
    assert net.features.training and net.classifier.training
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert net.features[0].weight.grad is not None and net.head.weight.shape == (10, 4096)


def test_loads_imagenet_file_from_torch_home(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg16(weights=None).state_dict().items()}
    # a distinct constant per tensor shows each one landed in the right place
    state = {k: torch.full(shape, float(i)) for i, (k, shape) in enumerate(shapes.items())}
    path = tmp_path / "hub" / "checkpoints" / VGG16_IMAGENET_FILE
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    assert vgg16_weights_path() == path

    net = VGGTransfer(out_channels=2, weights="imagenet")
    loaded = net.state_dict()
    for i, key in enumerate(shapes):
        if not key.startswith("classifier.6"):
            assert torch.all(loaded[key] == i), key
    assert not any(k.startswith("classifier.6") for k in loaded)
    assert all(p.device.type == "cpu" for p in net.parameters())
    assert [tuple(p.shape) for p in net.trainable_parameters()] == [(2048, 4096), (2048,), (2, 2048), (2,)]
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 2)


def test_missing_weights_file_says_where_to_put_it(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / VGG16_IMAGENET_FILE
    with pytest.raises(FileNotFoundError) as info:
        VGGTransfer(weights="imagenet")
    message = str(info.value)
    assert str(expected) in message and VGG16_IMAGENET_URL in message and "weights=None" in message


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"in_channels": 2}, "got 2"),
        ({"weights": "imagnet"}, "'imagnet'"),
        ({"dropout": 1.0}, "dropout"),
        ({"out_channels": 0}, "out_channels"),
    ],
    ids=["channels", "weights-typo", "dropout", "out"],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VGGTransfer(**kwargs)


def test_wrong_channels_names_shape(grey_net):
    with pytest.raises(ValueError, match=r"2, 3, 32, 32"):
        grey_net(torch.randn(2, 3, 32, 32))
