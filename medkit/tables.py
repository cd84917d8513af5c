"""Tables of runs: mean ± standard deviation over groups of runs (e.g. the seeds of each loss in a sweep), through
pandas, and the one Markdown table writer that sweeps, run reports and ``medkit bundles`` share."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["format_markdown", "markdown_table", "mean_std_table", "write_table"]


def mean_std_table(
    rows: Sequence[Mapping[str, Any]], group_key: str, columns: Sequence[str], order: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Groups ``rows`` by ``rows[group_key]`` and gives each column's mean and sample std within each group.

    The statistics are pandas' ``groupby().agg(["mean", "std", "count"])``, skipping missing values. medkit keeps two
    conventions on top: the std of a single value is 0 rather than pandas' NaN (one run has no spread to report), and
    group names are the ``str()`` of each row's value, so ``order`` can list them as text.

    Args:
        rows: one mapping per run, e.g. ``{"loss": "dice", "seed": 0, "val_mean_iou": 0.61, ...}``.
        group_key: the key whose value defines the groups.
        columns: the numeric keys to summarise; a missing key, ``None`` or NaN counts as no value.
        order: group values in the order wanted; default the order of first appearance.

    Returns:
        One dict per group: ``{group_key: value, "n": runs, "<col>": mean, "<col>_std": std, ...}``.

    Raises:
        KeyError: if a row lacks ``group_key``.
        ValueError: if a column holds a value that is not a number (the message names the column).
    """
    groups = pd.Series([str(row[group_key]) for row in rows], dtype=object, name=group_key)
    values = pd.DataFrame([dict(row) for row in rows], index=groups.index).reindex(columns=list(columns))
    for col in values:
        try:
            values[col] = pd.to_numeric(values[col]).astype(float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {col!r} of the runs table is not numeric: {exc}") from exc
    stats = values.groupby(groups, sort=False).agg(["mean", "std", "count"])
    runs = groups.groupby(groups, sort=False).size()
    names = [str(g) for g in order if str(g) in runs.index] if order else list(runs.index)
    table = []
    for name in names:
        entry: dict[str, Any] = {group_key: name, "n": int(runs[name])}
        for col in columns:
            cell = stats.loc[name, col]
            entry[col], entry[f"{col}_std"] = float(cell["mean"]), 0.0 if cell["count"] == 1 else float(cell["std"])
        table.append(entry)
    return table


def format_markdown(
    table: Sequence[Mapping[str, Any]], group_key: str, columns: Sequence[str], labels: Mapping[str, str] | None = None
) -> str:
    """A Markdown table of :func:`mean_std_table` output, cells as ``mean ± std`` with 3 decimals.

    Args:
        table: the rows returned by :func:`mean_std_table`.
        group_key: the key that names each group (the first column).
        columns: the summarised keys, in column order.
        labels: optional column headers by key; default the key itself.
    """
    labels = labels or {}
    head = [group_key, "runs", *(labels.get(c, c) for c in columns)]
    rows = [
        [entry[group_key], entry["n"], *(f"{entry[c]:.3f} ± {entry[f'{c}_std']:.3f}" for c in columns)]
        for entry in table
    ]
    return markdown_table(head, rows)


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], align: bool = False) -> str:
    """A Markdown (GitHub) table: ``header`` then one line per row; cells are ``str()``-ed, ``None`` is empty.

    A ``|`` or a line break inside a cell is escaped, so a cell never splits the table.

    Args:
        header: the column names.
        rows: the rows, each as long as ``header``.
        align: pad each column to its widest cell, so the table also reads well as plain text (a terminal).

    Returns:
        The table, ending with a newline.

    Raises:
        ValueError: if a row's length differs from the header's, naming the row.
    """
    cells = [[_cell(c) for c in header]]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"table row {list(row)!r} has {len(row)} cells for {len(header)} columns {list(header)}")
        cells.append([_cell(c) for c in row])
    widths = [max(len(line[i]) for line in cells) if align else 0 for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in cells]
    lines.insert(1, "|" + "|".join("-" * max(w + 2, 3) for w in widths) + "|")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def write_table(table: Sequence[Mapping[str, Any]], markdown: str, stem: str | os.PathLike) -> None:
    """Writes ``markdown`` to ``<stem>.md`` and the rows of ``table`` to ``<stem>.csv`` (a header from the first row).

    Args:
        table: the rows, e.g. from :func:`mean_std_table`; at least one.
        markdown: the table as Markdown.
        stem: the path without its extension.
    """
    stem = Path(stem)
    stem.with_name(stem.name + ".md").write_text(markdown)
    with open(stem.with_name(stem.name + ".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
