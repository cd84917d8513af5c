"""One page per run: ``report.md`` and a self-contained ``report.html`` in the run folder.

The report gathers what a training run and its evaluation left in the run folder: the best and final value of each
per-epoch TensorBoard scalar, the loss, metric and learning-rate curves (read by :func:`medkit.curves.read_scalars`,
drawn into ``report_curves.png``), the evaluation metrics (``eval/metrics.json`` and the ``*_summary.csv`` tables of
MONAI's ``MetricsSaver``), the figures the evaluate layer wrote (confusion matrix, ROC/PR, overlays) and the resolved
settings (``run_settings.json``, the split sizes of ``datalist.json``).

``report.md`` links the figures by relative path; ``report.html`` is the same text rendered by the ``markdown``
package with every image embedded as a ``data:`` URI and the style inline, so it opens anywhere, offline, as one file.
Each bundle's ``evaluate.json`` calls :func:`try_write_report` as the last item of its ``run`` list; the command line
rewrites a report at any time::

    medkit report runs/nuclei_seg/default
"""

from __future__ import annotations

import base64
import csv
import html
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from medkit.curves import Curve, best_point, metric_mode, plot_panels, read_scalars
from medkit.sweep import pick_metric
from medkit.tables import markdown_table
from medkit.utils import TEMP_PREFIX, atomic_path

logger = logging.getLogger(__name__)

__all__ = ["CURVES_PNG", "REPORT_HTML", "REPORT_MD", "try_write_report", "write_report"]

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
CURVES_PNG = "report_curves.png"
#: figures shown from each subfolder of the evaluation folder (per-image overlays); the rest are counted
MAX_FIGURES_PER_FOLDER = 6
# tags written once as hparams results (step 0), not curves
_HPARAM_PREFIXES = ("best/", "final/")
# metrics.json entries not tabulated: lists per image (in the CSVs), the confusion matrix (its figure) and the nested
# per-class scores (the same values as the flat per-class metrics beside them)
_NOT_TABULATED = ("per_image", "confusion_matrix", "per_class")

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; } th, td { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #eef2f6; text-align: left; } td { font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #ddd; } code { background: #f4f4f4; padding: 0 .2em; }
"""


def write_report(run_dir: str | os.PathLike, eval_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Writes ``report.md``, ``report.html`` and ``report_curves.png`` into ``run_dir`` (each atomically).

    Args:
        run_dir: a bundle run's ``output_dir`` (TensorBoard events, ``run_settings.json``, ``datalist.json``).
        eval_dir: the evaluation folder (``metrics.json``, figures); default ``<run_dir>/eval``.

    Returns:
        The paths of ``report.md`` and ``report.html``.

    Raises:
        FileNotFoundError: if ``run_dir`` does not exist.
        ValueError: if it holds no TensorBoard events, ``run_settings.json`` or evaluation ``metrics.json``.
    """
    run_dir = Path(run_dir)
    eval_dir = Path(eval_dir) if eval_dir is not None else run_dir / "eval"
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist; pass a bundle run's --output_dir")
    scalars = {t: c for t, c in read_scalars(run_dir).items() if not t.startswith(_HPARAM_PREFIXES)}
    settings = _read_json(run_dir / "run_settings.json")
    metrics = _read_json(eval_dir / "metrics.json")
    if not (scalars or settings or metrics):
        raise ValueError(
            f"{run_dir} holds no TensorBoard events, run_settings.json or {eval_dir / 'metrics.json'}: it is not a "
            "run folder; pass the --output_dir of a training run"
        )
    name = "/".join(run_dir.resolve().parts[-2:])  # runs/<bundle>/<name>: the bundle and the run
    parts = [
        f"# Run report: {name}",
        f"Run folder `{run_dir.resolve()}`, report written {datetime.now():%Y-%m-%d %H:%M}.",
        *_summary(scalars),
        *_evaluation(run_dir, eval_dir, metrics),
        *_curves(run_dir, scalars),
        *_figures(run_dir, eval_dir),
        *_settings(settings, _read_json(run_dir / "datalist.json")),
    ]
    text = "\n\n".join(part.rstrip("\n") for part in parts) + "\n"
    md_path, html_path = run_dir / REPORT_MD, run_dir / REPORT_HTML
    with atomic_path(md_path) as tmp:
        tmp.write_text(text)
    with atomic_path(html_path) as tmp:
        tmp.write_text(_to_html(text, run_dir, title=f"Run report: {name}"))
    logger.info("run report written: %s (and %s)", html_path, md_path.name)
    return md_path, html_path


def try_write_report(run_dir: str | os.PathLike, eval_dir: str | os.PathLike | None = None) -> tuple[Path, Path] | None:
    """:func:`write_report` for the end of an evaluation: on rank 0 only, and a failure is a warning, not an error.

    The last item of each bundle's ``evaluate.json`` ``run`` list: by then the metrics are written, and a report
    problem (an unreadable event file, a full disk) must not turn a finished evaluation into a failed one.

    Returns:
        The report paths, or ``None`` when nothing was written.
    """
    try:
        from medkit.bundle.distributed import is_main_process

        if not is_main_process():
            return None
        return write_report(run_dir, eval_dir)
    except Exception as exc:  # any failure: the evaluation itself has finished and its metrics are saved
        logger.warning("run report not written for %s: %s; retry with `medkit report %s`", run_dir, exc, run_dir)
        return None


def _read_json(path: Path) -> Any:
    """The JSON in ``path``, or ``None`` when the file does not exist."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); rerun the step that writes it") from exc


def _number(value: Any) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"


def _summary(scalars: Mapping[str, Curve]) -> list[str]:
    """The best and final value of each per-epoch scalar, the key metric (the one ``model.pt`` was kept by) first."""
    per_epoch = {t: c for t, c in _on_epochs(scalars)[0].items() if not _is_lr(t)}
    if not per_epoch:
        return ["## Summary", "No per-epoch TensorBoard scalars in this folder (no training run wrote here)."]
    key = pick_metric([per_epoch])
    rows = []
    for tag in sorted(per_epoch, key=lambda t: t != key):
        mode = metric_mode(tag)
        best_epoch, best = best_point(per_epoch[tag], mode)
        steps, values = per_epoch[tag]
        name = f"`{tag}` (key metric, `model.pt`)" if tag == key else f"`{tag}`"
        rows.append([name, mode, _number(best), best_epoch, _number(values[-1]), steps[-1]])
    epochs = max(c[0][-1] for c in per_epoch.values())
    return [
        "## Summary",
        f"Trained {epochs} epochs. Best and final value of each per-epoch TensorBoard scalar:",
        markdown_table(["scalar", "better", "best", "best epoch", "final", "final epoch"], rows),
    ]


def _on_epochs(scalars: Mapping[str, Curve]) -> tuple[dict[str, Curve], dict[str, Curve]]:
    """The scalars logged once per epoch, and those logged per iteration (``train_loss``) put on the epoch axis.

    The epoch count is the last step of ``train_loss_epoch`` (or of the first ``val_*`` tag); a tag whose last step
    is past it was logged per iteration, and its steps are divided by its iterations per epoch. Without either tag
    every scalar counts as per epoch.
    """
    anchor = "train_loss_epoch" if "train_loss_epoch" in scalars else pick_metric([scalars])
    epochs = scalars[anchor][0][-1] if anchor in scalars else None
    per_epoch, per_iteration = {}, {}
    for tag, (steps, values) in scalars.items():
        if epochs and steps[-1] > epochs:
            per_iteration[tag] = ([s * epochs / steps[-1] for s in steps], values)
        else:
            per_epoch[tag] = (steps, values)
    return per_epoch, per_iteration


def _is_lr(tag: str) -> bool:
    return tag == "lr" or tag.startswith(("lr/", "lr_", "learning_rate"))


def _curves(run_dir: Path, scalars: Mapping[str, Curve]) -> list[str]:
    """``report_curves.png``: one panel for losses, one for the other metrics, one for the learning rate."""
    panels: dict[str, dict[str, Curve]] = {"loss": {}, "metrics": {}, "learning rate": {}}
    per_epoch, per_iteration = _on_epochs(scalars)
    labelled = {**per_epoch, **{f"{tag} (per iteration)": curve for tag, curve in per_iteration.items()}}
    for tag, curve in labelled.items():
        panel = "learning rate" if _is_lr(tag) else "loss" if "loss" in tag.lower() else "metrics"
        panels[panel][tag] = curve
    panels = {name: curves for name, curves in panels.items() if curves}
    if not panels:
        (run_dir / CURVES_PNG).unlink(missing_ok=True)
        return ["## Training curves", "No TensorBoard scalars in this folder."]
    plot_panels(panels, run_dir / CURVES_PNG, xlabel="epoch")
    tags = ", ".join(f"`{tag}`" for curves in panels.values() for tag in curves)
    return [
        "## Training curves",
        f"Read from the TensorBoard events in the run folder: {tags}.",
        f"![loss, metric and learning-rate curves]({CURVES_PNG})",
    ]


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, value)`` for every non-dict value of nested dicts, paths joined by ``/``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}/{key}" if prefix else str(key))
    else:
        yield prefix, value


def _evaluation(run_dir: Path, eval_dir: Path, metrics: Any) -> list[str]:
    """The numbers of ``metrics.json`` as one table, its context (checkpoint, split) as another, then the
    ``MetricsSaver`` summary tables; per-image values are linked, not copied."""
    if metrics is None:
        return [
            "## Evaluation",
            f"No `{_relative(eval_dir / 'metrics.json', run_dir)}` yet: layer the bundle's `evaluate.json` on "
            "`train.json` with this `--output_dir`, which writes it and then this report.",
        ]
    if not isinstance(metrics, Mapping):
        raise ValueError(f"{eval_dir / 'metrics.json'} holds {type(metrics).__name__}, not an object; re-evaluate")
    numbers, context = [], []
    # the headline metrics without their "metrics/" prefix, then the counts and extras beside them
    rest = {k: v for k, v in metrics.items() if k not in (*_NOT_TABULATED, "metrics")}
    for path, value in _leaves({**(metrics.get("metrics") or {}), **rest}):
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        (numbers if is_number else context).append([f"`{path}`", _number(value) if is_number else f"`{value}`"])
    parts = ["## Evaluation", f"From `{_relative(eval_dir / 'metrics.json', run_dir)}`:"]
    parts.append(markdown_table(["metric", "value"], numbers) if numbers else "No numeric metrics.")
    if context:
        parts.append(markdown_table(["evaluated", "value"], context))
    for summary in sorted(eval_dir.glob("*_summary.csv")):
        with open(summary, newline="") as f:
            header, *rows = list(csv.reader(f))
        parts += [f"Summary over images, `{_relative(summary, run_dir)}`:", markdown_table(header, rows)]
    other = [p for p in sorted(eval_dir.glob("*.csv")) if not p.name.endswith("_summary.csv")]
    if other:
        parts.append("Tables the evaluation wrote: " + ", ".join(f"`{_relative(p, run_dir)}`" for p in other) + ".")
    return parts


def _figures(run_dir: Path, eval_dir: Path) -> list[str]:
    """Every PNG the evaluation wrote at the top of its folder, and the first few of each subfolder (overlays)."""
    folders: dict[Path, list[Path]] = {}
    for png in sorted(eval_dir.rglob("*.png")):
        if not png.name.startswith(TEMP_PREFIX):
            folders.setdefault(png.parent, []).append(png)
    if not folders:
        return ["## Figures", "The evaluation wrote no figures."]
    parts = ["## Figures"]
    for folder, pngs in folders.items():
        shown = pngs if folder == eval_dir else pngs[:MAX_FIGURES_PER_FOLDER]
        for png in shown:
            rel = _relative(png, run_dir)
            parts.append(f"`{rel}`\n\n![{png.stem}]({quote(rel)})")
        if len(pngs) > len(shown):
            parts.append(f"... and {len(pngs) - len(shown)} more in `{_relative(folder, run_dir)}`.")
    return parts


def _settings(settings: Any, datalist: Any) -> list[str]:
    """The run's resolved settings (``run_settings.json``) and the size of each split (``datalist.json``)."""
    parts = ["## Settings"]
    if isinstance(settings, Mapping):
        rows = [[f"`{k}`", f"`{json.dumps(v)}`"] for k, v in settings.items()]
        parts += [
            "Resolved settings of the training run (`run_settings.json`):",
            markdown_table(["key", "value"], rows),
        ]
    else:
        parts.append("No `run_settings.json` in this folder.")
    if isinstance(datalist, Mapping):
        rows = [[f"`{k}`", _count(v) if isinstance(v, list) else f"`{json.dumps(v)}`"] for k, v in datalist.items()]
        parts += ["Data split (`datalist.json`):", markdown_table(["entry", "value"], rows)]
    return parts


def _count(items: list) -> str:
    return f"{len(items)} item{'s' * (len(items) != 1)}"


def _relative(path: Path, run_dir: Path) -> str:
    return Path(os.path.relpath(path, run_dir)).as_posix()


_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")')


def _to_html(text: str, run_dir: Path, title: str) -> str:
    """``text`` (Markdown) as one HTML page: inline style, each local image replaced by a ``data:`` URI."""
    import markdown

    body = markdown.markdown(text, extensions=["tables", "fenced_code"], output_format="html")

    def embed(match: re.Match) -> str:
        path = run_dir / unquote(html.unescape(match.group(2)))
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"{match.group(1)}data:image/png;base64,{data}{match.group(3)}"

    body = _IMG_SRC.sub(embed, body)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
