"""stack_outputs on decollated and batched engine outputs."""

from __future__ import annotations

import torch

from medkit.metrics import stack_outputs


def test_stack_outputs_batches_decollated_items():
    items = [{"a": torch.zeros(1, 2), "b": torch.ones(1, 2)}, {"a": torch.ones(1, 2), "b": torch.zeros(1, 2)}]
    a, b = stack_outputs(items, "a", "b")
    assert a.shape == (2, 1, 2) and a[1].sum() == 2 and b[0].sum() == 2
    batch = {"a": torch.zeros(3), "b": torch.ones(3)}
    assert stack_outputs(batch, "b")[0] is batch["b"]
