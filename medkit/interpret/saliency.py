"""Gradient saliency (Simonyan et al. 2014) through ``monai.visualize.VanillaGrad`` and ``SmoothGrad``.

How strongly each input pixel moves the explained logit, ``|d logit / d x|``. MONAI computes the gradient; medkit adds
what its classes do not do:

* **medkit's class rule**: a single-logit binary network explains its one logit and a wrong output shape is a
  ``ValueError`` (:func:`class_scores`, plugged in as ``ModelWithHooks.class_score``);
* **batches**: MONAI takes one image per call, so a batch runs one forward/backward per sample (in eval mode each
  sample's map depends on that sample alone, so the result is the same as one batched pass);
* **parameter gradients left alone**: MONAI's ``ModelWithHooks`` calls ``model.zero_grad()`` and backpropagates into
  the parameters; their ``.grad`` are put back as they were, so a map can be drawn in the middle of training;
* **the caller's input untouched** (MONAI sets ``requires_grad`` on the tensor it is given) and the train/eval mode
  restored even when the forward pass fails.

Reference:
    K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional Networks: Visualising Image Classification
    Models and Saliency Maps", ICLR workshop 2014, https://arxiv.org/abs/1312.6034.
    D. Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017, https://arxiv.org/abs/1706.03825.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from monai.visualize import SmoothGrad, VanillaGrad
from monai.visualize.class_activation_maps import ModelWithHooks
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


class _ClassScoreHooks(ModelWithHooks):
    """MONAI's model wrapper with medkit's choice of the logit to explain."""

    def class_score(self, logits: torch.Tensor, class_idx: torch.Tensor | int) -> torch.Tensor:
        return class_scores(logits, class_idx)


@contextmanager
def _keep_state(model: nn.Module) -> Iterator[None]:
    """Puts back the parameters' ``.grad`` and the train/eval mode of ``model`` afterwards."""
    grads = [(p, p.grad) for p in model.parameters()]
    was_training = model.training
    try:
        yield
    finally:
        for param, grad in grads:
            param.grad = grad
        model.train(was_training)


def saliency_map(
    model: nn.Module,
    x: torch.Tensor,
    class_idx: torch.Tensor | int | None = None,
    n_samples: int = 0,
    stdev_spread: float = 0.15,
) -> torch.Tensor:
    """Absolute gradient of the explained logit with respect to the input, averaged over channels.

    The model runs in eval mode (restored afterwards). Parameter gradients are left as they were, and frozen networks
    such as :class:`medkit.networks.VGGTransfer` run their frozen part with autograd on because the input requires
    grad. ``n_samples > 0`` averages over noisy copies of each image (SmoothGrad, ``magnitude=True``): the root mean
    square of their gradients, on the same scale as the vanilla map (MONAI returns ``sqrt(sum g**2) / n``, which this
    multiplies by ``sqrt(n)``). The noise comes from torch's global generator.

    Shape contract:
        ``x`` ``(B, C, H, W)`` -> saliency ``(B, H, W)``, non-negative, same dtype and device as ``x``.

    Args:
        model: a classifier returning ``(B, num_classes)`` logits.
        x: the preprocessed input batch.
        class_idx: class to explain (see :func:`class_scores`), one for all samples or one per sample; default the
            predicted (max-logit) class.
        n_samples: 0 for the vanilla gradient (``monai.visualize.VanillaGrad``); otherwise the number of noisy copies
            for ``monai.visualize.SmoothGrad``.
        stdev_spread: SmoothGrad's noise standard deviation as a fraction of each image's value range.
    """
    if x.dim() != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    hooks = _ClassScoreHooks(model, target_layer_names=(), register_backward=True)
    grad_fn = SmoothGrad(hooks, stdev_spread, n_samples, verbose=False) if n_samples else VanillaGrad(hooks)
    per_sample = class_idx is not None and torch.as_tensor(class_idx).dim() > 0
    if x.shape[0] == 0:
        return x.new_zeros(0, *x.shape[2:])
    maps = []
    with _keep_state(model), torch.enable_grad():
        for i in range(x.shape[0]):
            index = torch.as_tensor(class_idx)[i] if per_sample else class_idx
            grad = grad_fn(x[i : i + 1].detach().clone(), index, retain_graph=False)
            maps.append(grad.abs().mean(dim=1))
    return (torch.cat(maps) * max(n_samples, 1) ** 0.5).to(x.dtype)
