"""Grad-CAM (Selvaraju et al. 2017) through ``monai.visualize.GradCAM``, made safe for frozen networks.

MONAI's ``GradCAM`` needs three things this module provides around it:

* a graph through the target layer. :class:`medkit.networks.VGGTransfer` runs its frozen part under
  ``torch.no_grad()`` unless the input requires grad, so the input is given ``requires_grad=True``;
* no in-place op right after the hooked layer (VGG's ``ReLU(inplace=True)`` breaks full backward hooks), so every
  ``inplace`` flag is switched off for the call and restored after;
* no hooks left behind (MONAI registers hooks it never removes), so hooks added during the call are dropped.

It also explains the *predicted* class of single-logit binary networks: the logit is expanded to ``[-z, z]`` so
the class with the larger score is the prediction, and a normal-predicted image shows the evidence for "normal".

Reference:
    R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization",
    ICCV 2017, https://arxiv.org/abs/1610.02391.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from monai.visualize import GradCAM
from torch import nn

from medkit.interpret.feature_maps import conv_layer_names

__all__ = ["default_target_layer", "grad_cam"]


class _PredictedClassLogits(nn.Module):
    """Wraps a classifier so a single binary logit ``z`` becomes the two-class logits ``[-z, z]``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        return torch.cat([-logits, logits], dim=1) if logits.shape[1] == 1 else logits


def default_target_layer(model: nn.Module) -> str:
    """The name of the last ``nn.Conv2d`` of ``model`` (``features.28`` for VGG16).

    Raises:
        ValueError: if the model has no ``nn.Conv2d``.
    """
    names = conv_layer_names(model)
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer; pass target_layer explicitly")
    return names[-1]


@contextmanager
def _no_inplace(model: nn.Module) -> Iterator[None]:
    switched = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for module in switched:
        module.inplace = False
    try:
        yield
    finally:
        for module in switched:
            module.inplace = True


@contextmanager
def _drop_new_hooks(model: nn.Module) -> Iterator[None]:
    # monai's ModelWithHooks keeps no handles, so the hooks it adds are removed by comparing hook ids before/after
    before = {m: (set(m._forward_hooks), set(m._backward_hooks)) for m in model.modules()}
    try:
        yield
    finally:
        for module, (forward, backward) in before.items():
            for key in set(module._forward_hooks) - forward:
                del module._forward_hooks[key]
            for key in set(module._backward_hooks) - backward:
                del module._backward_hooks[key]


def _min_max(cam: torch.Tensor) -> torch.Tensor:
    flat = cam.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    scale = torch.where(high > low, high - low, torch.ones_like(high))
    return ((flat - low[:, None]) / scale[:, None]).reshape(cam.shape)


def grad_cam(model: nn.Module, x: torch.Tensor, target_layer: str | None = None) -> torch.Tensor:
    """Grad-CAM of the predicted class at ``target_layer``, upsampled to the input size and scaled to ``[0, 1]``.

    Images are explained one at a time because MONAI's ``GradCAM`` scores a batch with one class index. The model
    runs in eval mode (restored afterwards); its parameters' ``.grad`` are zeroed by MONAI.

    Shape contract:
        ``x`` ``(B, C, H, W)`` -> ``(B, H, W)`` in ``[0, 1]`` per image (all zeros where nothing supports the class).

    Args:
        model: a classifier returning ``(B, num_classes)`` logits (``num_classes == 1``: a binary logit).
        x: the preprocessed input batch.
        target_layer: module name as in ``model.named_modules()``; default :func:`default_target_layer`.

    Raises:
        ValueError: if ``target_layer`` is not a module of ``model`` (the message lists the conv layers).
    """
    if x.dim() != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")
    name = target_layer or default_target_layer(model)
    if name not in dict(model.named_modules()):
        raise ValueError(
            f"target_layer {name!r} is not a module of {type(model).__name__}; conv layers: {conv_layer_names(model)}"
        )
    wrapper = _PredictedClassLogits(model)
    maps = []
    with _no_inplace(model), _drop_new_hooks(model), torch.enable_grad():
        cam = GradCAM(wrapper, target_layers=f"net.{name}", postprocessing=_min_max)
        for image in x:
            maps.append(cam(image[None].detach().clone().requires_grad_(True)).detach())
    return torch.cat(maps)[:, 0]
