"""A seed ensemble of trained classifiers that averages their class probabilities and returns logits again.

Deep ensembles (Lakshminarayanan et al. 2017) average the predicted probabilities of independently trained copies of
one network. :class:`ProbabilityEnsemble` does that inside ``forward`` and hands back the logits of the averaged
probabilities, so every consumer of a classifier's logits (metrics, CSV writers, confusion matrices) works on the
ensemble unchanged:

- one output channel (binary, BCE-with-logits): ``logit(mean_k sigmoid(z_k))``;
- several channels (multi-class, cross-entropy): ``log(mean_k softmax(z_k))``, whose softmax is the mean probability.
"""

from __future__ import annotations

import copy
import glob
import logging
import math
import os
from collections.abc import Sequence

import torch
from torch import nn

from medkit.networks.checkpoint import load_checkpoint

__all__ = ["ProbabilityEnsemble", "find_member_checkpoints"]

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
        logits = [member(x) for member in self.members]
        shapes = {tuple(z.shape) for z in logits}
        if len(shapes) != 1:
            raise ValueError(f"ensemble members disagree on the output shape: {sorted(shapes)}")
        stacked = torch.stack([z.float() for z in logits])
        if stacked.shape[-1] == 1:
            prob = torch.sigmoid(stacked).mean(0).clamp(self.eps, 1.0 - self.eps)
            return torch.logit(prob)
        # log of the mean softmax, computed stably: logsumexp over members of log_softmax, minus log(K)
        return torch.logsumexp(torch.log_softmax(stacked, dim=-1), dim=0) - math.log(len(self.members))

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
