"""Sweeps: run one bundle over a grid of config overrides, one subprocess per variant, then summarise and plot.

Command line (from the repository root)::

    medkit sweep nuclei_seg --name lr_skip --set learning_rate=1e-2,1e-3,1e-4 \\
        --set network_def#skip_connections=true,false -- --epochs 20

Each variant is ``python -m monai.bundle run --config_file <layers> --output_dir runs/<bundle>/<name>/<variant>/
--KEY VALUE ...`` with its log in ``<variant>/sweep.log`` and its outcome in ``<variant>/sweep_status.json``. A failed
variant (nonzero exit or timeout) is recorded and the sweep goes on; a re-run skips the variants already ``ok``.
Afterwards ``summary.csv``, ``summary.md`` and ``curves.png`` are written in ``runs/<bundle>/<name>/``, read from each
variant's TensorBoard events.

``--set`` values are written as on the bundle command line but JSON-style (``true``, ``null``, ``1e-3``, ``[4,8]``,
``dice``); they are passed on as Python literals, because ``monai.bundle``'s command line (python-fire) would keep
``true`` as the string ``"true"``. Commas inside brackets or quotes do not split values:
``--set channels=[4,8],[8,16]``. The parsing lives in :mod:`medkit.bundle.cli_values` (shared with
``medkit explain --override``), the bundle lookup in :func:`medkit.bundle.lookup.find_bundle`.

The library functions (:func:`expand_grid`, :func:`variant_name`, :func:`build_command`, :func:`run_variant`,
:func:`summarize`, :func:`write_summary`, and :mod:`medkit.curves` for reading and plotting) work on their own.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medkit.bundle.cli_values import cli_literal, parse_set, parse_value, split_values
from medkit.bundle.lookup import find_bundle
from medkit.bundle.overrides import check_override_keys, cli_override_keys
from medkit.curves import best_and_worst, best_point, metric_mode, plot_curves, plot_groups, read_scalars
from medkit.tables import markdown_table
from medkit.utils import save_json

logger = logging.getLogger(__name__)

__all__ = [
    "STATUS_FILE",
    "Variant",
    "available_cpus",
    "build_command",
    "cli_literal",
    "evaluate_once",
    "expand_grid",
    "parse_set",
    "parallel_env",
    "parse_value",
    "pick_metric",
    "plan_sweep",
    "read_status",
    "report_sweep",
    "resolve_configs",
    "run_sweep",
    "run_variant",
    "split_values",
    "summarize",
    "sweep_runs",
    "variant_name",
    "write_summary",
]

STATUS_FILE = "sweep_status.json"
LOG_FILE = "sweep.log"


@dataclass
class Variant:
    """One run of a sweep: its overrides (as typed), its folder and its command."""

    name: str
    overrides: dict[str, str]
    output_dir: Path
    command: list[str] = field(default_factory=list)


def expand_grid(sets: Mapping[str, Sequence[str]] | Sequence[tuple[str, Sequence[str]]]) -> list[dict[str, str]]:
    """The Cartesian product of ``{key: values}``, first key varying slowest; one empty dict for an empty grid."""
    items = list(sets.items()) if isinstance(sets, Mapping) else list(sets)
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a sweep key is set twice: {keys}")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in items))]


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
_UNSAFE_VALUE = re.compile(r"[^A-Za-z0-9._+-]+")


def variant_name(overrides: Mapping[str, str], max_len: int = 120) -> str:
    """A readable, filesystem-safe folder name: ``optimizer.lr=1e-3__network_def.skip_connections=false``.

    ``#`` becomes ``.``, runs of other unsafe characters become ``-``; names longer than ``max_len`` are cut and end
    with a short hash of the full name, so they stay unique. No overrides gives ``base``.
    """
    if not overrides:
        return "base"
    parts = []
    for key, value in overrides.items():
        safe = _UNSAFE_VALUE.sub("-", value).strip("-")
        safe = f"-{safe}" if value.startswith("-") else safe
        parts.append(f"{_UNSAFE.sub('-', key.replace('#', '.')).strip('-')}={safe}")
    name = "__".join(parts)
    if len(name) > max_len:
        import hashlib

        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: max_len - 9]}-{digest}"
    return name


def resolve_configs(
    bundle: str | os.PathLike, configs: Sequence[str] = (), bundles_root: str | os.PathLike | None = None
) -> tuple[str, list[Path]]:
    """The bundle's name and its config layers (default ``configs/train.json``).

    Args:
        bundle: a bundle name or a path to a bundle folder (see :func:`medkit.bundle.lookup.find_bundle`).
        configs: layer files, each a path or a name in the bundle's ``configs/`` folder.
        bundles_root: where bundle names are looked up; default ``./bundles``, then the repository's ``bundles/``.

    Raises:
        FileNotFoundError: naming the missing bundle (and the bundles there are) or config file.
    """
    root = find_bundle(bundle, None if bundles_root is None else [bundles_root])
    files = []
    for cfg in configs or ["train.json"]:
        path = Path(cfg) if Path(cfg).is_file() else root / "configs" / cfg
        if not path.is_file():
            raise FileNotFoundError(f"config {cfg!r} is neither a file nor in {root / 'configs'}")
        files.append(path)
    return root.resolve().name, files


def build_command(
    config_files: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    overrides: Mapping[str, str],
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """``python -m monai.bundle run`` for one variant; the variant's overrides follow ``extra_args``, so they win."""
    files = [str(f) for f in config_files]
    config_arg = files[0] if len(files) == 1 else "[" + ",".join(repr(f) for f in files) + "]"
    cmd = [python, "-m", "monai.bundle", "run", "--config_file", config_arg, *extra_args]
    for key, value in overrides.items():
        cmd += [f"--{key}", cli_literal(parse_value(value))]
    return cmd + ["--output_dir", str(output_dir)]


def sweep_runs(sweep_dir: str | os.PathLike) -> list[tuple[Path, dict[str, Any]]]:
    """``(run folder, status)`` of every variant of ``sweep_dir`` that has a status file, in name order; the status
    holds ``status`` (``ok`` for a finished run) and the variant's ``overrides``."""
    files = sorted(Path(sweep_dir).glob(f"*/{STATUS_FILE}"))
    return [(f.parent, json.loads(f.read_text())) for f in files]


def evaluate_once(
    run_dir: str | os.PathLike,
    config_files: Sequence[str | os.PathLike],
    overrides: Mapping[str, str],
    log_name: str = "evaluate.log",
) -> dict[str, float]:
    """The ``metrics`` of ``run_dir/eval/metrics.json``, running the evaluate command (``config_files`` with the
    variant's ``overrides``) once to write it when it is missing; its output goes to ``run_dir/log_name``.

    Raises:
        subprocess.CalledProcessError: if the evaluation fails (its log names why).
    """
    run_dir = Path(run_dir)
    report = run_dir / "eval" / "metrics.json"
    if not report.is_file():
        with open(run_dir / log_name, "w") as log:
            subprocess.run(
                build_command(config_files, run_dir, overrides), stdout=log, stderr=subprocess.STDOUT, check=True
            )
    return json.loads(report.read_text())["metrics"]


def plan_sweep(
    bundle: str | os.PathLike,
    name: str,
    sets: Sequence[tuple[str, Sequence[str]]],
    configs: Sequence[str] = (),
    runs_root: str | os.PathLike = "runs",
    extra_args: Sequence[str] = (),
    bundles_root: str | os.PathLike | None = None,
) -> tuple[Path, list[Variant]]:
    """The sweep folder ``runs_root/<bundle>/<name>`` and its variants (grid order), commands included.

    Raises:
        UserError: for a ``--set`` key or an override after ``--`` that the bundle's configs do not define, naming
            the closest known keys, before any variant runs.
    """
    if not name or _UNSAFE.search(name):
        raise ValueError(f"sweep name {name!r} must be non-empty and use only letters, digits, . _ = + -")
    bundle_name, files = resolve_configs(bundle, configs, bundles_root)
    extra_keys = cli_override_keys(["run", *extra_args])[0]
    check_override_keys([key for key, _ in sets] + extra_keys, files)
    sweep_dir = Path(runs_root) / bundle_name / name
    variants, seen = [], set()
    for overrides in expand_grid(sets):
        vname = variant_name(overrides)
        if vname in seen:
            vname = f"{vname}__{len(seen)}"
        seen.add(vname)
        out = sweep_dir / vname
        variants.append(Variant(vname, overrides, out, build_command(files, out, overrides, extra_args)))
    return sweep_dir, variants


def read_status(output_dir: str | os.PathLike) -> dict | None:
    """The variant's ``sweep_status.json``, or ``None`` when it never finished."""
    path = Path(output_dir) / STATUS_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parallel_env(max_parallel: int, cpus: int | None = None, environ: Mapping[str, str] | None = None) -> dict | None:
    """The environment for runs started ``max_parallel`` at a time: the CPUs split between them.

    PyTorch and NumPy start one thread per CPU in every process, so N runs at once would each start all of them and
    fight over the cores. With ``max_parallel`` > 1 each run gets ``OMP_NUM_THREADS = max(1, cpus // max_parallel)``,
    unless ``OMP_NUM_THREADS`` is set already (the user's choice is kept).

    Args:
        max_parallel: runs at once.
        cpus: CPUs to split; default :func:`available_cpus`.
        environ: the environment to start from; default ``os.environ``.

    Returns:
        The child environment, or ``None`` (inherit this process's) when nothing needs changing.
    """
    environ = os.environ if environ is None else environ
    if max_parallel <= 1 or "OMP_NUM_THREADS" in environ:
        return None
    threads = max(1, (available_cpus() if cpus is None else cpus) // max_parallel)
    return {**environ, "OMP_NUM_THREADS": str(threads)}


def run_variant(
    variant: Variant, timeout_s: float | None = None, tail_lines: int = 30, env: Mapping[str, str] | None = None
) -> dict:
    """Runs one variant in a subprocess, its output in ``sweep.log``, and writes ``sweep_status.json``.

    ``env`` is the subprocess environment (default: this process's).

    Returns:
        The status: ``status`` (``ok``, ``failed`` or ``timeout``), ``returncode``, ``wall_s``, ``overrides``,
        ``command`` and, unless ok, ``log_tail`` (the last ``tail_lines`` lines of the log).
    """
    variant.output_dir.mkdir(parents=True, exist_ok=True)
    log_path = variant.output_dir / LOG_FILE
    start = time.monotonic()
    with open(log_path, "w") as log:
        log.write("$ " + shlex.join(variant.command) + "\n")
        log.flush()
        # own session, so a timeout kills the run with any DataLoader workers it started
        proc = subprocess.Popen(variant.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            returncode, status = proc.wait(timeout=timeout_s), None
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            returncode, status = proc.wait(), "timeout"
    result = {
        "name": variant.name,
        "status": status or ("ok" if returncode == 0 else "failed"),
        "returncode": returncode,
        "wall_s": round(time.monotonic() - start, 2),
        "overrides": variant.overrides,
        "command": variant.command,
    }
    if result["status"] != "ok":
        result["log_tail"] = _tail(log_path, tail_lines)
    save_json(result, variant.output_dir / STATUS_FILE)
    return result


def run_sweep(
    variants: Sequence[Variant], max_parallel: int = 1, timeout_s: float | None = None, dry_run: bool = False
) -> list[dict | None]:
    """Runs the variants not yet ``ok`` (``max_parallel`` at a time) and logs one line per start and finish.

    With ``max_parallel`` > 1 the CPUs are split between the runs (:func:`parallel_env`).

    Returns:
        Each variant's status in ``variants`` order (``None`` for variants a dry run would run).
    """
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be >= 1, got {max_parallel}")
    total = len(variants)
    results: list[dict | None] = [read_status(v.output_dir) for v in variants]

    def one(index: int) -> None:
        v = variants[index]
        logger.info("[%d/%d] start %s", index + 1, total, v.name)
        results[index] = res = run_variant(v, timeout_s, env=env)
        logger.info("[%d/%d] %s %s in %.1f s", index + 1, total, res["status"], v.name, res["wall_s"])
        if res["status"] != "ok":
            logger.warning("%s failed (see %s):\n%s", v.name, v.output_dir / LOG_FILE, res["log_tail"][-2000:])

    todo = []
    for i, (v, res) in enumerate(zip(variants, results, strict=True)):
        if res is not None and res.get("status") == "ok":
            logger.info("[%d/%d] skip %s (already ok)", i + 1, total, v.name)
        else:
            todo.append(i)
    if dry_run:
        for i in todo:
            logger.info("[%d/%d] would run %s", i + 1, total, variants[i].name)
            results[i] = None
        return results
    cpus = available_cpus()
    env = parallel_env(max_parallel, cpus)
    if env is not None:
        logger.info(
            "%d runs at a time on %d CPUs: OMP_NUM_THREADS=%s each (set OMP_NUM_THREADS to choose)",
            max_parallel,
            cpus,
            env["OMP_NUM_THREADS"],
        )
    with ThreadPoolExecutor(max_workers=max_parallel) as pool:
        list(pool.map(one, todo))
    return results


def pick_metric(scalars: Sequence[Mapping[str, Any]], metric: str | None = None) -> str | None:
    """``metric`` if given, else the first ``val_*`` tag any run wrote (MONAI evaluators write the key metric first)."""
    if metric:
        return metric
    for tags in scalars:
        for tag in tags:
            if tag.startswith("val_"):
                return tag
    return None


def summarize(
    variants: Sequence[Variant], statuses: Sequence[dict | None], metric: str | None = None, mode: str | None = None
) -> tuple[list[dict], str | None]:
    """One row per variant, best first: overrides, status, epochs, best/final metric and the epoch of the best.

    Args:
        variants: the sweep's variants.
        statuses: their ``sweep_status.json`` contents (``None`` for never run).
        metric: the TensorBoard tag to rank by; default the first ``val_*`` tag found (:func:`pick_metric`).
        mode: ``max`` or ``min``; default ``min`` for loss-like tags, else ``max``.

    Returns:
        The rows and the metric used.
    """
    scalars = [read_scalars(v.output_dir) if v.output_dir.is_dir() else {} for v in variants]
    metric = pick_metric(scalars, metric)
    mode = mode or (metric_mode(metric) if metric else "max")
    rows = []
    for v, status, tags in zip(variants, statuses, scalars, strict=True):
        row: dict[str, Any] = {"variant": v.name, **v.overrides}
        row["status"] = status["status"] if status else "not run"
        row.update(epochs=None, best=None, best_epoch=None, final=None)
        if metric and tags.get(metric):
            best_epoch, best = best_point(tags[metric], mode)
            row.update(epochs=tags[metric][0][-1], best=best, best_epoch=best_epoch, final=tags[metric][1][-1])
        row["wall_s"] = status.get("wall_s") if status else None
        rows.append(row)
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (r["best"] is None, sign * r["best"] if r["best"] is not None else 0.0))
    return rows, metric


def _fmt(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if column == "wall_s" else f"{value:.4f}"
    return str(value)


def write_summary(
    rows: Sequence[Mapping[str, Any]],
    sweep_dir: str | os.PathLike,
    metric: str | None,
    failures: Mapping[str, str] = {},
) -> tuple[Path, Path]:
    """Writes ``summary.csv`` and ``summary.md`` (the rows as a table, then the log tail of each failed variant).

    The ``best``/``final`` columns are named after the metric (``best_val_mean_dice``).
    """
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    label = metric or "metric"
    rename = {"best": f"best_{label}", "final": f"final_{label}"}
    columns = [rename.get(c, c) for c in (rows[0] if rows else ["variant"])]
    table = [[_fmt(c, r[c]) for c in r] for r in rows]
    csv_path = sweep_dir / "summary.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(table)
    md = [
        f"# Sweep {sweep_dir.name}",
        "",
        f"Ranked by the best `{label}`; `epochs` is the last epoch with a value.",
        "",
    ]
    md.append(markdown_table(columns, table).rstrip("\n"))
    for name, tail in failures.items():
        md += ["", f"## {name} failed", "", "```", *tail.splitlines()[-10:], "```"]
    md_path = sweep_dir / "summary.md"
    md_path.write_text("\n".join(md) + "\n")
    return csv_path, md_path


def report_sweep(
    sweep_dir: str | os.PathLike,
    variants: Sequence[Variant],
    statuses: Sequence[dict | None],
    metric: str | None = None,
    mode: str | None = None,
    curve_tag: str | None = None,
    group_by: str | None = None,
) -> list[dict]:
    """Writes ``summary.csv``, ``summary.md`` and ``curves.png`` (``curve_tag``, default the metric) for a sweep.

    With ``group_by`` (a swept key, e.g. ``loss_name``), ``curves.png`` has one panel per value of that key, each
    panel marking its best and worst variant by the best metric (e.g. the seeds of each loss).
    """
    rows, metric = summarize(variants, statuses, metric, mode)
    failures = {
        v.name: s.get("log_tail", "") for v, s in zip(variants, statuses, strict=True) if s and s["status"] != "ok"
    }
    write_summary(rows, sweep_dir, metric, failures)
    tag = curve_tag or metric
    if not tag:
        logger.warning("no validation metric in any run of %s: no curves.png", sweep_dir)
        return rows
    png, title = Path(sweep_dir) / "curves.png", f"{Path(sweep_dir).name}: {tag}"
    if group_by:
        groups: dict[str, list[str]] = {}
        for v in variants:
            groups.setdefault(f"{group_by}={v.overrides.get(group_by)}", []).append(v.name)
        scores = {r["variant"]: r["best"] for r in rows}
        dirs = {v.name: v.output_dir for v in variants}
        plot_groups(
            dirs, groups, tag=tag, out_path=png, scores=scores, mode=mode or metric_mode(metric or tag), title=title
        )
        return rows
    curves = {v.name: read_scalars(v.output_dir).get(tag) for v in variants if v.output_dir.is_dir()}
    present = {k: c for k, c in curves.items() if c}
    labels = best_and_worst({r["variant"]: r["best"] for r in rows}, mode or metric_mode(metric or tag))
    failed = [
        f"{v.name} ({s['status'] if s else 'not run'})"
        for v, s in zip(variants, statuses, strict=True)
        if v.name not in present
    ]
    plot_curves(present, png, tag=tag, highlight=labels if len(present) > 2 else None, failed=failed, title=title)
    return rows
