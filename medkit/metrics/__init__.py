"""Metrics that MONAI and ignite lack, or lack in the reported form (per class, by name)."""

from __future__ import annotations

from medkit.metrics.per_class import PerClassDice, per_class_dice, stack_outputs

__all__ = ["PerClassDice", "per_class_dice", "stack_outputs"]
