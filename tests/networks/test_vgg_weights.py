"""resolve_vgg_weights: ImageNet when the file is there, a loud fallback when it is not, and explicit choices."""

from __future__ import annotations

import pytest

from medkit.networks import resolve_vgg_weights
from medkit.networks.vgg import VGG16_IMAGENET_URL, vgg16_weights_path


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_auto_without_the_file_warns_with_path_and_url(torch_home, caplog):
    assert resolve_vgg_weights("auto") is None
    assert str(torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth") in caplog.text
    assert VGG16_IMAGENET_URL in caplog.text and "WARNING" in caplog.text


def test_auto_with_the_file_uses_imagenet(torch_home, caplog):
    path = vgg16_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # only its presence is checked here; VGGTransfer reads it
    assert resolve_vgg_weights("auto") == "imagenet"
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [("imagenet", "imagenet"), ("ImageNet", "imagenet"), (None, None), ("none", None), ("random", None)],
)
def test_explicit_choices(torch_home, value, expected):
    assert resolve_vgg_weights(value) == expected


def test_unknown_value():
    with pytest.raises(ValueError, match="'resnet'"):
        resolve_vgg_weights("resnet")
