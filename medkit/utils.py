"""Small shared helpers."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["as_bool", "as_image_size", "atomic_path", "build_by_name", "save_figure", "save_json", "select"]

#: how a temporary file of :func:`atomic_path` starts: hidden, and never mistaken for a finished output
TEMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary name to write ``path`` under; renamed to ``path`` when the block ends, removed if it raises.

    The temporary file sits in the same folder (so the rename is atomic) and ends with ``path``'s own name, so
    writers that pick the format from the extension (Pillow, nibabel, matplotlib) still do. Readers of ``path`` see
    the old file or the complete new one, never a half-written one; a process killed mid-write leaves only a hidden
    ``.tmp-*`` file. Parent folders are created.

    Example::

        with atomic_path(out / "case1.png") as tmp:
            image.save(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    """Writes ``obj`` as indented JSON, atomically (:func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
    return path


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Lays out a matplotlib figure tightly, writes it to ``path`` atomically (parent folders created) and closes it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return path


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def as_bool(value: Any) -> bool:
    """Reads a command-line flag value: ``True``, ``"true"``, ``"1"``, ``"yes"`` ... or their false counterparts.

    Raises:
        ValueError: for any other value, naming it.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def select(options: dict[str, Any], key: str, what: str = "option") -> Any:
    """Returns ``options[key]``, the config switch behind overrides such as ``--loss dice``.

    Raises:
        ValueError: naming ``what``, the bad key and the valid ones.
    """
    if key not in options:
        raise ValueError(f"unknown {what} {key!r}; choose one of {sorted(options)}")
    return options[key]


def build_by_name(builders: Mapping[str, Callable[..., Any]], name: str, what: str, /, **kwargs: Any) -> Any:
    """Calls ``builders[name](**kwargs)``: the lookup behind name registries such as ``get_network``.

    Raises:
        ValueError: naming ``what`` and the unknown ``name``, and listing the known names.
    """
    try:
        builder = builders[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; known: {sorted(builders)}") from None
    return builder(**kwargs)


def as_image_size(image_size: int | tuple[int, int], min_size: int) -> tuple[int, int]:
    """Checks a generator's ``image_size`` (one int for a square, or ``(H, W)``) and returns it as ``(H, W)``.

    Raises:
        ValueError: naming the bad value, if it is not an int or a pair of ints, or a side is under ``min_size``.
    """
    import numpy as np  # here, so that importing medkit.utils (the CLI does) stays light

    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size):
        raise ValueError(f"image_size must be an int or a pair of ints (H, W), got {image_size!r}")
    if min(size) < min_size:
        raise ValueError(f"image_size must be at least {min_size} pixels on each side, got {image_size!r}")
    return int(size[0]), int(size[1])
