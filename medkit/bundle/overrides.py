"""Command-line overrides checked against the bundle's config: ``--epoch 1`` stops at once, suggesting ``--epochs``.

MONAI adds an unknown override key to the config as a new entry, so a typo silently leaves the default in force.
:func:`check_override_keys` compares override keys with the ids the config files define; :func:`check_cli_overrides`
does it for the ``python -m monai.bundle run`` command line of the running process, before any work starts.
"""

from __future__ import annotations

import ast
import difflib
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from medkit.bundle.errors import UserError

__all__ = [
    "check_cli_overrides",
    "cli_overrides",
    "check_override_keys",
    "cli_override_keys",
    "config_ids",
    "parse_config_files",
]

# arguments of `python -m monai.bundle run` (scripts.run, create_workflow, ConfigWorkflow) that are not config ids
MONAI_RUN_ARGS = frozenset(
    {
        "run_id",
        "init_id",
        "final_id",
        "meta_file",
        "config_file",
        "logging_file",
        "tracking",
        "args_file",
        "workflow_name",
        "workflow_type",
        "properties_path",
    }
)
_ID_SEP = "#"


def config_ids(config: Any, prefix: str = "") -> set[str]:
    """Every id of a config tree, nested ids joined with ``#`` (``network_def#channels``, ``train#handlers#0``)."""
    ids: set[str] = set()
    items = config.items() if isinstance(config, dict) else enumerate(config) if isinstance(config, list) else ()
    for key, value in items:
        key = str(key).lstrip("+")
        full = f"{prefix}{_ID_SEP}{key}" if prefix else key
        ids.add(full)
        ids |= config_ids(value, full)
    return ids


def parse_config_files(value: str | Sequence[str]) -> list[str]:
    """The config file list of a ``--config_file`` value: a path, a comma-separated string or a Python list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = ast.literal_eval(text)
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    return [str(v) for v in value]


def _load_merged(config_files: Sequence[str | os.PathLike]) -> dict:
    from monai.bundle import ConfigParser

    merged: dict = {}
    for path in config_files:
        if not Path(path).is_file():
            raise UserError(f"config file {path} does not exist; check --config_file (run from the repository root)")
        merged.update(ConfigParser.load_config_file(str(path)))
    return merged


def _is_component(config: dict, key: str) -> bool:
    node: Any = config
    for part in key.split(_ID_SEP):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return isinstance(node, dict) and "_target_" in node


def check_override_keys(keys: Iterable[str], config_files: Sequence[str | os.PathLike]) -> None:
    """Raises a :class:`UserError` for the first override key the config files do not define.

    A key is known when it is an id of the merged configs, a MONAI ``run`` argument, under ``_meta_``, or a new
    argument of a component (``network_def#act`` where ``network_def`` has a ``_target_``).

    Args:
        keys: override keys without the leading ``--`` (``epochs``, ``network_def#channels``).
        config_files: the configs the overrides apply to, in layering order.

    Raises:
        UserError: naming the unknown key, the closest known keys and the config files.
    """
    merged = _load_merged(config_files)
    ids = config_ids(merged)
    for key in keys:
        if key in ids or key in MONAI_RUN_ARGS or key.startswith("_meta_"):
            continue
        parent = key.rpartition(_ID_SEP)[0]
        if parent and _is_component(merged, parent):
            continue
        # a top-level key is compared with top-level ids, a nested one with nested ids of the same depth
        depth = key.count(_ID_SEP)
        same_depth = sorted(i for i in ids | MONAI_RUN_ARGS if i.count(_ID_SEP) == depth)
        close = difflib.get_close_matches(key, same_depth, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join('--' + c for c in close)}? " if close else ""
        names = ", ".join(str(p) for p in config_files)
        raise UserError(f"unknown override --{key}: {hint}no such key in {names} (nested keys are joined with '#')")


def _options(args: Sequence[str]) -> list[tuple[str, list[str], str]]:
    """``(key, words, value)`` for each ``--key value`` or ``--key=value`` of a command line; ``words`` are the
    tokens as given, ``value`` is ``""`` for a bare flag."""
    options = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if not arg.startswith("--"):
            continue
        key, has_value, value = arg[2:].partition("=")
        if not has_value and i + 1 < len(args) and not args[i + 1].startswith("--"):
            options.append((key, [arg, args[i + 1]], args[i + 1]))
            skip = True
        else:
            options.append((key, [arg], value))
    return options


def cli_override_keys(argv: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """``(override keys, config files)`` of a ``monai.bundle run`` argument list, ``None`` for another command."""
    if not argv or argv[0] != "run":
        return None
    keys: list[str] = []
    config_files: list[str] = []
    for key, _, value in _options(argv[1:]):
        if key == "config_file":
            config_files = parse_config_files(value)
        elif key:
            keys.append(key)
    return keys, config_files


def cli_overrides(argv: Sequence[str] | None = None, drop: Sequence[str] = ()) -> list[str]:
    """The ``--key value`` overrides of a ``python -m monai.bundle run`` command line, without ``--config_file`` and
    the keys in ``drop``."""
    options = _options(sys.argv[1:] if argv is None else argv)
    return [word for key, words, _ in options if key not in ("config_file", *drop) for word in words]


def check_cli_overrides(argv: Sequence[str] | None = None) -> None:
    """Checks the overrides of this process's ``python -m monai.bundle run`` command line (no-op otherwise).

    Args:
        argv: the arguments after the program name; default ``sys.argv[1:]`` when the program is ``monai.bundle``.

    Raises:
        UserError: for an override key the configs do not define.
    """
    if argv is None:
        if Path(sys.argv[0]).parent.name != "bundle" or Path(sys.argv[0]).parent.parent.name != "monai":
            return
        argv = sys.argv[1:]
    parsed = cli_override_keys(argv)
    if parsed is None or not parsed[1]:
        return
    check_override_keys(*parsed)
