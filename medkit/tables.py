"""Mean ± standard deviation tables over groups of runs (e.g. the seeds of each loss in a sweep)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_markdown", "mean_std_table"]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value) of the non-NaN ``values``."""
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not finite:
        return math.nan, math.nan
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))


def mean_std_table(
    rows: Sequence[Mapping[str, Any]], group_key: str, columns: Sequence[str], order: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Groups ``rows`` by ``rows[group_key]`` and gives each column's mean and sample std within each group.

    Args:
        rows: one mapping per run, e.g. ``{"loss": "dice", "seed": 0, "val_mean_iou": 0.61, ...}``.
        group_key: the key whose value defines the groups.
        columns: the numeric keys to summarise; a missing key or NaN counts as no value.
        order: group values in the order wanted; default the order of first appearance.

    Returns:
        One dict per group: ``{group_key: value, "n": runs, "<col>": mean, "<col>_std": std, ...}``.

    Raises:
        KeyError: if a row lacks ``group_key``.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row[group_key]), []).append(row)
    names = [str(g) for g in order if str(g) in groups] if order else list(groups)
    table = []
    for name in names:
        entry: dict[str, Any] = {group_key: name, "n": len(groups[name])}
        for col in columns:
            entry[col], entry[f"{col}_std"] = _mean_std([r.get(col, math.nan) for r in groups[name]])
        table.append(entry)
    return table


def format_markdown(
    table: Sequence[Mapping[str, Any]], group_key: str, columns: Sequence[str], labels: Mapping[str, str] | None = None
) -> str:
    """A Markdown table of :func:`mean_std_table` output, cells as ``mean ± std`` with 3 decimals."""
    labels = labels or {}
    head = [group_key, "runs", *(labels.get(c, c) for c in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in table:
        cells = [str(entry[group_key]), str(entry["n"])]
        cells += [f"{entry[c]:.3f} ± {entry[f'{c}_std']:.3f}" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
