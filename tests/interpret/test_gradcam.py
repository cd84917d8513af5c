"""Grad-CAM: equals the class activation map on a conv -> global pool -> linear model; works through frozen VGG."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medkit.interpret import default_target_layer, grad_cam
from medkit.networks import MobileNetV1, VGGTransfer


class _PoolNet(nn.Module):
    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(3, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(x)).mean(dim=(2, 3)))


def _min_max(a: torch.Tensor) -> torch.Tensor:
    return (a - a.min()) / (a.max() - a.min())


@pytest.mark.parametrize("out_channels", [4, 1], ids=["multiclass", "binary"])
def test_matches_class_activation_map(out_channels):
    # with a global average pool, d logit_k / dA_c(i, j) = W[k, c] / (H W), so Grad-CAM = relu(sum_c W[k, c] A_c)
    net = _PoolNet(out_channels).eval()
    x = torch.randn(2, 1, 6, 7)
    cams = grad_cam(net, x, target_layer="act")
    acts = torch.relu(net.conv(x)).detach()
    logits = net(x).detach()
    for b in range(2):
        if out_channels == 1:  # the predicted class: +logit when positive, -logit otherwise
            w = net.fc.weight[0] * (1 if logits[b, 0] > 0 else -1)
        else:
            w = net.fc.weight[logits[b].argmax()]
        expected = torch.relu((w.detach()[:, None, None] * acts[b]).sum(0))
        torch.testing.assert_close(cams[b], _min_max(expected), atol=1e-5, rtol=1e-4)
    assert net.act.inplace and not any(m._forward_hooks or m._backward_hooks for m in net.modules())


def test_frozen_vgg_transfer_under_no_grad():
    net = VGGTransfer(in_channels=3, out_channels=2, weights=None)
    assert default_target_layer(net) == "features.28"
    with torch.no_grad():  # a caller's no_grad must not block it either
        cams = grad_cam(net, torch.rand(2, 3, 64, 64))
    assert cams.shape == (2, 64, 64) and torch.isfinite(cams).all()
    assert cams.min() >= 0 and cams.max() <= 1 and cams.max() == 1
    assert all(m.inplace for m in net.modules() if hasattr(m, "inplace") and isinstance(m, nn.ReLU))
    assert not any(m._forward_hooks or m._backward_hooks for m in net.modules())


def test_mobilenet_and_bad_layer_name():
    net = MobileNetV1(in_channels=1, out_channels=3)
    assert grad_cam(net, torch.rand(1, 1, 64, 64)).shape == (1, 64, 64)
    with pytest.raises(ValueError, match="'features.99'"):
        grad_cam(net, torch.rand(1, 1, 32, 32), target_layer="features.99")
