"""Classifiers that average class probabilities over several predictions and return logits again.

- :class:`ProbabilityEnsemble`: a seed ensemble. Deep ensembles (Lakshminarayanan et al. 2017) average the predicted
  probabilities of independently trained copies of one network.
- :class:`JointEnsemble`: a seed ensemble trained in one run: several freshly initialised copies of one network
  see the same batches, each learns from its own loss (:class:`medkit.losses.MemberLoss`), and they are scored as
  their mean probability. :func:`build_ensemble` makes one (or the plain network for one member).
- :class:`FlipTTA`: flip test-time augmentation. One network predicts the image and its mirror images (the flips
  it was trained with), and the probabilities are averaged.

Both hand back the logits of the averaged probabilities (:func:`mean_probability_logits`), so every consumer of a
classifier's logits (metrics, CSV writers, confusion matrices) works on them unchanged:

- one output channel (binary, BCE-with-logits): ``logit(mean_k sigmoid(z_k))``;
- several channels (multi-class, cross-entropy): ``log(mean_k softmax(z_k))``, whose softmax is the mean probability.
"""

from __future__ import annotations

import copy
import glob
import logging
import math
import os
from collections.abc import Callable, Sequence

import torch
from torch import nn

from medkit.networks.checkpoint import load_checkpoint

__all__ = [
    "ProbabilityEnsemble",
    "JointEnsemble",
    "build_ensemble",
    "FlipTTA",
    "find_member_checkpoints",
    "mean_probability_logits",
]

logger = logging.getLogger(__name__)


class ProbabilityEnsemble(nn.Module):
    """Mean class probability of several networks with the same output shape, returned as logits.

    Args:
        members: the trained networks (at least one). They are called in ``forward`` one after another.
        eps: probabilities are clamped to ``[eps, 1 - eps]`` before the logit/log, so a member that is certain does not
            give infinite logits.
    """

    def __init__(self, members: Sequence[nn.Module], eps: float = 1e-6) -> None:
        super().__init__()
        if len(members) == 0:
            raise ValueError("ProbabilityEnsemble needs at least one member network, got none")
        if not 0.0 < eps < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps}")
        self.members = nn.ModuleList(members)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mean_probability_logits([member(x) for member in self.members], eps=self.eps, what="ensemble members")

    @classmethod
    def from_checkpoints(
        cls,
        network: nn.Module,
        paths: Sequence[str | os.PathLike],
        map_location: str | torch.device = "cpu",
        eps: float = 1e-6,
    ) -> ProbabilityEnsemble:
        """One deep copy of ``network`` per checkpoint, each loaded strictly, in eval mode.

        Args:
            network: the architecture of every member (left untouched; its copies are loaded).
            paths: checkpoints written by MONAI's ``CheckpointSaver``, ``model.pt`` or ``model_final.pt``
                (:func:`medkit.networks.checkpoint.read_model_state`).
            map_location: passed to ``torch.load``.
            eps: see the class.

        Raises:
            ValueError: if ``paths`` is empty.
            FileNotFoundError: naming the first missing checkpoint.
            ValueError: naming the checkpoint whose tensors do not fit ``network`` (see :func:`load_checkpoint`).
        """
        paths = [os.fspath(p) for p in paths]
        if not paths:
            raise ValueError("no member checkpoints given; train the members first (one run per seed)")
        members = [load_checkpoint(copy.deepcopy(network), path, map_location) for path in paths]
        logger.info("ensemble of %d members: %s", len(paths), ", ".join(paths))
        return cls(members, eps=eps).eval()  # members too


class JointEnsemble(ProbabilityEnsemble):
    """Members trained together in one run and scored as their mean probability (a deep ensemble in one command).

    In training mode ``forward`` returns the members' logits side by side, ``(B, K * C)`` for ``K`` members of ``C``
    outputs, member ``k`` in channels ``k*C:(k+1)*C``, so that :class:`medkit.losses.MemberLoss` gives each member its
    own loss: the members do not learn from each other's errors, as independently trained seeds would not. In eval
    mode it is a :class:`ProbabilityEnsemble`: the logits of the mean probability, ``(B, C)``. The members differ by
    their random initialisation (build each with a fresh call, see :func:`build_ensemble`).

    Args:
        members: the networks (at least two), all with the same output shape.
        eps: see :class:`ProbabilityEnsemble`.

    Raises:
        ValueError: for fewer than two members.
    """

    def __init__(self, members: Sequence[nn.Module], eps: float = 1e-6) -> None:
        if len(members) < 2:
            raise ValueError(f"JointEnsemble needs at least two members, got {len(members)}; use the network itself")
        super().__init__(members, eps=eps)

    @property
    def num_members(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = [member(x) for member in self.members]
        if self.training:
            return torch.cat(logits, dim=1)
        # the members share one network_def, so their outputs agree in shape (TorchScript exports this path)
        return _mean_probability_logits(torch.stack([z.float() for z in logits]), self.eps)


def build_ensemble(builder: Callable[[], nn.Module], members: int = 1) -> nn.Module:
    """``builder()`` for one member, else a :class:`JointEnsemble` of ``members`` separate calls of it.

    Each call draws its own random initial weights, so the members start apart; one member gives the plain network,
    whose checkpoints have the keys they always had.

    Args:
        builder: makes one freshly initialised network (a config entry with ``"_mode_": "callable"``).
        members: how many networks; 1 for the plain network.

    Raises:
        ValueError: if ``members`` is not a positive integer.
    """
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise ValueError(f"members must be a positive integer, got {members!r}")
    if members == 1:
        return builder()
    return JointEnsemble([builder() for _ in range(members)])


def mean_probability_logits(
    logits: Sequence[torch.Tensor], eps: float = 1e-6, what: str = "predictions"
) -> torch.Tensor:
    """The logits of the mean class probability of several ``(B, C)`` logit tensors, in float32.

    ``C == 1`` is a binary classifier (sigmoid): ``logit(clamp(mean sigmoid(z_k), eps, 1 - eps))``. ``C > 1`` is a
    softmax classifier: ``log(mean softmax(z_k))``, computed as ``logsumexp_k log_softmax(z_k) - log K``.

    Args:
        logits: one tensor per prediction, all of one shape.
        eps: the clamp of the binary case, so a certain prediction does not give an infinite logit.
        what: what the predictions are, for the error message.

    Raises:
        ValueError: if ``logits`` is empty or the shapes differ (the message lists them).
    """
    if len(logits) == 0:
        raise ValueError(f"no {what} to average")
    shapes = {tuple(z.shape) for z in logits}
    if len(shapes) != 1:
        raise ValueError(f"{what} disagree on the output shape: {sorted(shapes)}")
    return _mean_probability_logits(torch.stack([z.float() for z in logits]), eps)


def _mean_probability_logits(stacked: torch.Tensor, eps: float) -> torch.Tensor:
    """:func:`mean_probability_logits` of the ``(K, B, C)`` stack, without the checks (TorchScript compiles it)."""
    if stacked.shape[-1] == 1:
        return torch.logit(torch.sigmoid(stacked).mean(0).clamp(eps, 1.0 - eps))
    return torch.logsumexp(torch.log_softmax(stacked, dim=-1), dim=0) - math.log(stacked.shape[0])


class FlipTTA(nn.Module):
    """Flip test-time augmentation: the mean class probability over an image and its flipped copies, as logits.

    A classifier trained with random flips should not care about them, so averaging its probabilities over the flipped
    views cancels part of its error, at one extra forward pass per view. Use the flips the network was trained with.

    Args:
        network: the classifier, called on every view; inputs are ``(B, C, *spatial)``.
        spatial_axes: one entry per extra view: a spatial axis (0 is the first spatial dimension, as in
            :class:`monai.transforms.Flip`) or a sequence of axes flipped together; a bare int is one view. The
            default ``(1,)`` adds the left-right mirror of 2D images (width, the last dimension). The unflipped image
            is always a view.
        eps: the clamp of :func:`mean_probability_logits`.

    Raises:
        ValueError: if an axis is negative or not an integer, or ``spatial_axes`` or an entry is empty; at
            ``forward``, if an axis is not a spatial dimension of the input.
    """

    def __init__(
        self, network: nn.Module, spatial_axes: int | Sequence[int | Sequence[int]] = (1,), eps: float = 1e-6
    ) -> None:
        super().__init__()
        if isinstance(spatial_axes, int):  # one axis, as a command line gives it
            spatial_axes = [spatial_axes]
        views: list[tuple[int, ...]] = []
        for entry in spatial_axes:
            axes = (entry,) if isinstance(entry, int) else tuple(entry)
            if not axes or any(not isinstance(a, int) or isinstance(a, bool) or a < 0 for a in axes):
                raise ValueError(
                    f"spatial_axes entries must be non-negative spatial axes or non-empty lists of them, got {entry!r}"
                )
            views.append(axes)
        if not views:
            raise ValueError("spatial_axes is empty: give at least one flip, e.g. [1] for the left-right mirror")
        if not 0.0 < eps < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps}")
        self.network = network
        self.views = views
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_spatial = x.ndim - 2
        for axes in self.views:
            if max(axes) >= n_spatial:
                raise ValueError(
                    f"flip axes {axes} do not fit an input with {n_spatial} spatial dimensions {tuple(x.shape[2:])}"
                )
        logits = [self.network(x)]
        logits += [self.network(torch.flip(x, dims=[2 + a for a in axes])) for axes in self.views]
        return mean_probability_logits(logits, eps=self.eps, what="flipped views")


def find_member_checkpoints(root: str | os.PathLike, filename: str = "model.pt") -> list[str]:
    """The ``<root>/<run>/<filename>`` files of the runs directly under ``root``, sorted by path.

    This is the layout ``medkit sweep <bundle> --name <root name> --set seed=0,1,...`` leaves behind.

    Raises:
        FileNotFoundError: if ``root`` holds no such file; the message names the pattern searched.
    """
    pattern = os.path.join(os.fspath(root), "*", filename)
    found = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
    if not found:
        raise FileNotFoundError(
            f"no ensemble members: nothing matches {pattern}; train one run per seed under {root} first "
            f"(e.g. medkit sweep <bundle> --name <name> --set seed=0,1), or pass --ckpt_path with a list of checkpoints"
        )
    return found
