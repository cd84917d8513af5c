"""Vanilla gradient saliency (Simonyan et al. 2014): how strongly each input pixel moves the predicted logit.

Reference:
    K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional Networks: Visualising Image Classification
    Models and Saliency Maps", ICLR workshop 2014, https://arxiv.org/abs/1312.6034.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["class_scores", "predicted_class", "saliency_map"]


def _check_logits(logits: torch.Tensor) -> None:
    if logits.dim() != 2:
        raise ValueError(f"expected classification logits (B, num_classes), got shape {tuple(logits.shape)}")


def predicted_class(logits: torch.Tensor) -> torch.Tensor:
    """Predicted class per sample ``(B,)``: argmax for multi-class logits, ``logit > 0`` for one binary logit."""
    _check_logits(logits)
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def class_scores(logits: torch.Tensor, class_idx: torch.Tensor | int | None = None) -> torch.Tensor:
    """The logit to explain for each sample, ``(B,)``.

    Args:
        logits: ``(B, num_classes)`` raw logits; with ``num_classes == 1`` (binary, sigmoid) the single logit is used.
        class_idx: class to explain, one for all samples or one per sample; ``None`` takes the largest logit.
    """
    _check_logits(logits)
    if logits.shape[1] == 1:
        return logits[:, 0]
    if class_idx is None:
        index = logits.argmax(dim=1)
    else:
        index = torch.as_tensor(class_idx, device=logits.device).long().expand(logits.shape[0])
    return logits.gather(1, index[:, None])[:, 0]


def saliency_map(model: nn.Module, x: torch.Tensor, class_idx: torch.Tensor | int | None = None) -> torch.Tensor:
    """Absolute gradient of the explained logit with respect to the input, averaged over channels.

    The model runs in eval mode (restored afterwards), so each sample's map depends on that sample alone. Parameter
    gradients are not touched (``torch.autograd.grad`` differentiates with respect to the input only), and frozen
    networks such as :class:`medkit.networks.VGGTransfer` run their frozen part with autograd on because the input
    requires grad.

    Shape contract:
        ``x`` ``(B, C, H, W)`` -> saliency ``(B, H, W)``, non-negative, same dtype and device as ``x``.

    Args:
        model: a classifier returning ``(B, num_classes)`` logits.
        x: the preprocessed input batch.
        class_idx: class to explain (see :func:`class_scores`); default the predicted (max-logit) class.
    """
    if x.dim() != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            score = class_scores(model(x), class_idx)
            (grad,) = torch.autograd.grad(score.sum(), x)
    finally:
        model.train(was_training)
    return grad.abs().mean(dim=1)
