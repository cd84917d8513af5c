"""Config values typed on a command line: ``KEY=VALUE`` overrides and ``KEY=V1,V2`` sweep sets.

Values are read as JSON first (``true``, ``null``, ``1e-3``, ``[4,8]``), then as Python literals (``'a,b'``,
``(1, 2)``), and are strings otherwise (``dice``, ``$@learning_rate * 10``). :func:`cli_literal` writes a value back
as the text ``python -m monai.bundle run`` (python-fire) reads as that value.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from typing import Any

__all__ = ["cli_literal", "parse_overrides", "parse_set", "parse_value", "split_pair", "split_values"]

_PAIRS = {"[": "]", "(": ")", "{": "}"}


def parse_value(text: str) -> Any:
    """Reads one value as JSON (``true``, ``null``, ``1e-3``, ``[4,8]``), else as a Python literal, else as a string."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return text


def cli_literal(value: Any) -> str:
    """The ``monai.bundle`` command-line text that python-fire reads back as ``value``.

    ``True`` for ``true`` (fire keeps ``true`` as a string), ``[4, 8]``, ``0.001``; strings stay bare unless fire would
    read them as something else (``"1,2"`` would become a tuple, so it is quoted: ``'1,2'``).
    """
    if isinstance(value, str):
        from fire.parser import DefaultParseValue

        if DefaultParseValue(value) == value:
            return value
    return repr(value)


def split_pair(text: str) -> tuple[str, str] | None:
    """``"--optimizer#lr=1e-3"`` -> ``("optimizer#lr", "1e-3")``; ``None`` when there is no ``=`` or no key."""
    key, sep, value = text.partition("=")
    key = key.strip().lstrip("-")
    return (key, value) if sep and key else None


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` to ``{key: value}``, each value read by :func:`parse_value`.

    Raises:
        ValueError: for an item without ``=`` or without a key.
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        parsed = split_pair(pair)
        if parsed is None:
            raise ValueError(f"override {pair!r} is not KEY=VALUE")
        result[parsed[0]] = parse_value(parsed[1].strip())
    return result


def split_values(text: str) -> list[str]:
    """Splits ``"1e-3,[4,8],'a,b'"`` on the commas outside brackets and quotes: ``["1e-3", "[4,8]", "'a,b'"]``."""
    values, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _PAIRS:
            depth += 1
        elif ch in _PAIRS.values():
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    if depth != 0 or quote or any(v == "" for v in values):
        raise ValueError(f"cannot split sweep values {text!r}: unbalanced brackets/quotes or an empty value")
    return values


def parse_set(spec: str) -> tuple[str, list[str]]:
    """``"optimizer#lr=1e-3,1e-4"`` -> ``("optimizer#lr", ["1e-3", "1e-4"])``; the values stay text.

    Raises:
        ValueError: for a spec without a key or values, or with unbalanced brackets or quotes.
    """
    parsed = split_pair(spec)
    if parsed is None or not parsed[1].strip():
        raise ValueError(f"--set expects KEY=V1,V2,..., got {spec!r}")
    return parsed[0], split_values(parsed[1])
