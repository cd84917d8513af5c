"""Saliency maps against hand-computed input gradients of linear models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medkit.interpret import class_scores, predicted_class, saliency_map
from medkit.networks import VGGTransfer


def _linear(weight: torch.Tensor) -> nn.Module:
    out, features = weight.shape
    net = nn.Sequential(nn.Flatten(), nn.Linear(features, out))
    with torch.no_grad():
        net[1].weight.copy_(weight)
        net[1].bias.zero_()
    return net


def test_multiclass_saliency_is_the_abs_weight_row_of_the_max_logit_averaged_over_channels():
    # 2 channels x 1 x 2 pixels, 2 classes; logit_k = w_k . x, so d logit_k / dx = w_k
    weight = torch.tensor([[1.0, -2.0, 3.0, 4.0], [-5.0, 6.0, 0.5, -0.5]])
    x = torch.tensor([[[[1.0, 0.0]], [[1.0, 1.0]]], [[[0.0, 0.0]], [[-1.0, 0.0]]]])  # logits: [8, -5], [-3, -0.5]
    sal = saliency_map(_linear(weight), x)
    # sample 0 -> class 0: |[1, -2]| and |[3, 4]| averaged = [2, 3]; sample 1 -> class 1: |[-5, 6]|, |[.5, -.5]|
    expected = torch.tensor([[[2.0, 3.0]], [[2.75, 3.25]]])
    torch.testing.assert_close(sal, expected)


def test_binary_single_logit_and_explicit_class():
    weight = torch.tensor([[-1.0, 2.0, -3.0, 0.0]])
    x = torch.ones(1, 1, 2, 2)
    torch.testing.assert_close(saliency_map(_linear(weight), x), torch.tensor([[[1.0, 2.0], [3.0, 0.0]]]))
    two = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 2.0, 0.0, -4.0]])
    torch.testing.assert_close(saliency_map(_linear(two), x, class_idx=1), torch.tensor([[[0.0, 2.0], [0.0, 4.0]]]))


@pytest.mark.parametrize(
    "logits,expected",
    [([[0.3], [-0.1]], [1, 0]), ([[0.1, 0.9, -1.0], [2.0, 0.0, 1.0]], [1, 0])],
    ids=["binary", "multiclass"],
)
def test_predicted_class(logits, expected):
    assert predicted_class(torch.tensor(logits)).tolist() == expected


def test_class_scores_rejects_non_classification_output():
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        class_scores(torch.zeros(2, 3, 4))


def test_saliency_reaches_the_input_through_frozen_vgg_and_leaves_weights_alone():
    net = VGGTransfer(in_channels=1, out_channels=3, weights=None).train()
    sal = saliency_map(net, torch.rand(2, 1, 32, 32))
    assert sal.shape == (2, 32, 32) and torch.all(sal >= 0) and sal.sum() > 0
    assert all(p.grad is None for p in net.parameters())
    assert net.training and net.head.training  # mode restored


def test_per_sample_class_and_smoothgrad_of_a_linear_model_equals_the_vanilla_map():
    two = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 2.0, 0.0, -4.0]])
    x = torch.rand(2, 1, 2, 2)
    expected = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[0.0, 2.0], [0.0, 4.0]]])
    torch.testing.assert_close(saliency_map(_linear(two), x, class_idx=torch.tensor([0, 1])), expected)
    # the gradient of a linear model does not depend on the noise, so the RMS over noisy copies is the plain gradient
    smooth = saliency_map(_linear(two), x, class_idx=torch.tensor([0, 1]), n_samples=4)
    torch.testing.assert_close(smooth, expected)
    assert saliency_map(_linear(two), x[:0]).shape == (0, 2, 2)


def test_parameter_gradients_and_input_are_left_as_they_were():
    net = _linear(torch.tensor([[1.0, -1.0, 2.0, 0.0], [3.0, 0.0, 0.0, 1.0]]))
    net[1].weight.grad = torch.full_like(net[1].weight, 7.0)
    x = torch.rand(3, 1, 2, 2)
    saliency_map(net, x, n_samples=2)
    assert torch.all(net[1].weight.grad == 7.0) and net[1].bias.grad is None
    assert not x.requires_grad and x.grad is None
    with pytest.raises(ValueError, match="n_samples must be >= 0, got -1"):
        saliency_map(net, x, n_samples=-1)
