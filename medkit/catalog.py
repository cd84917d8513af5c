"""The bundles at a glance: task, network inputs and outputs, and the measured metrics, from each ``metadata.json``.

Behind ``medkit bundles``. Every value comes from the bundle's ``configs/metadata.json`` (MONAI's bundle schema):
``task``, ``network_data_format`` and ``eval_metrics``, where the numbers are the ones last measured and the text
fields (``data``, ``command``, ``note``) say how. A metric recorded as ``null``, or no number at all, reads
"not measured": nothing is estimated here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medkit.bundle.lookup import REPO_BUNDLES
from medkit.tables import markdown_table

__all__ = ["NOT_MEASURED", "bundle_catalog", "default_bundles_root", "format_catalog", "measured_metrics"]

NOT_MEASURED = "not measured"
COLUMNS = ("bundle", "version", "task", "inputs", "outputs", "metrics")


def default_bundles_root() -> Path:
    """``./bundles`` when the current folder has one (commands run from the repository root), else the repository's."""
    return Path("bundles") if Path("bundles").is_dir() else REPO_BUNDLES


def bundle_catalog(bundles_root: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """One row per bundle under ``bundles_root`` (folders holding ``configs/metadata.json``), sorted by name.

    Args:
        bundles_root: the folder of bundles; default :func:`default_bundles_root`.

    Returns:
        ``{"bundle", "version", "task", "inputs", "outputs", "metrics"}`` per bundle, each a string.

    Raises:
        FileNotFoundError: if ``bundles_root`` holds no bundle metadata.
        ValueError: naming the ``metadata.json`` that is not valid JSON or lacks ``network_data_format``.
    """
    root = Path(bundles_root) if bundles_root is not None else default_bundles_root()
    paths = sorted(root.glob("*/configs/metadata.json"))
    if not paths:
        raise FileNotFoundError(f"no bundle in {root}: no <bundle>/configs/metadata.json; pass --bundles-root")
    return [_row(path) for path in paths]


def _row(path: Path) -> dict[str, str]:
    try:
        meta = json.loads(path.read_text())
        formats = meta["network_data_format"]
        inputs, outputs = formats["inputs"], formats["outputs"]
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} lacks network_data_format inputs/outputs ({exc!r}); see bundles/meta_schema.json"
        ) from exc
    return {
        "bundle": meta.get("name") or path.parents[1].name,
        "version": str(meta.get("version", "")),
        "task": str(meta.get("task", "")),
        "inputs": "; ".join(_tensor(name, spec) for name, spec in inputs.items()),
        "outputs": "; ".join(_tensor(name, spec) for name, spec in outputs.items()),
        "metrics": measured_metrics(meta.get("eval_metrics")),
    }


def _tensor(name: str, spec: Mapping[str, Any]) -> str:
    """``image: 1×256×256 float32 (magnitude)``: channels × spatial shape, dtype and format."""
    shape = "×".join(str(s) for s in [spec.get("num_channels", "?"), *spec.get("spatial_shape", [])])
    fmt = str(spec.get("format") or "")
    if len(fmt) > 30:  # a sentence rather than a MONAI format name: its first clause
        fmt = fmt.split(",")[0][:30] + "…"
    parts = [f"{name}: {shape}", spec.get("dtype"), f"({fmt})" if fmt else None]
    return " ".join(str(p) for p in parts if p)


def measured_metrics(eval_metrics: Any) -> str:
    """The numbers of a metadata ``eval_metrics`` block as ``name value, ...``; ``null`` ones read "not measured".

    Text fields (``data``, ``command``, ``note``) are how the numbers were measured, not metrics, and are left out.
    """
    if not isinstance(eval_metrics, Mapping):
        return NOT_MEASURED
    numbers = [f"{k} {v:g}" for k, v in eval_metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    missing = [k for k, v in eval_metrics.items() if v is None]
    if missing:
        numbers.append(f"{', '.join(missing)} {NOT_MEASURED}")
    return ", ".join(numbers) or NOT_MEASURED


def format_catalog(rows: list[dict[str, str]]) -> str:
    """The rows of :func:`bundle_catalog` as an aligned Markdown table (readable in a terminal, pasteable in docs)."""
    return markdown_table(COLUMNS, [[row[c] for c in COLUMNS] for row in rows], align=True)
