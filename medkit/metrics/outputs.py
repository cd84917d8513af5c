"""Output transforms that batch the decollated outputs of MONAI engines for ignite metrics."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["stack_outputs"]


def stack_outputs(output: Any, *keys: str) -> tuple[torch.Tensor, ...]:
    """Output transform: stacks ``keys`` of a decollated engine output (a list of dicts) into batch tensors; a batched
    output (a dict) gives its entries unchanged."""
    if isinstance(output, dict):
        return tuple(output[k] for k in keys)
    return tuple(torch.stack([torch.as_tensor(item[k]) for item in output]) for k in keys)
