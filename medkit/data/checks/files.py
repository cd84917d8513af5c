"""File-level checks shared by the dataset readers: symlinks out of the dataset, empty files, duplicate ids, and the
text, JSON and ``.npz`` readers that turn malformed files into one-line errors naming the file."""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_LINE_BYTES",
    "check_file",
    "check_unique_ids",
    "index_by_stem",
    "inside",
    "npz_names",
    "read_json",
    "read_npz",
    "text_lines",
]

MAX_LINE_BYTES = 1 << 24  # 16 MiB: far above any sequence line medkit reads, far below what would exhaust memory


def inside(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """The absolute path of ``path`` with symlinks followed, refusing one that leads out of the dataset folder ``root``.

    Raises:
        ValueError: naming the link and its target, when the target is outside ``root``.
    """
    real, base = Path(path).resolve(), Path(root).resolve()
    if real != base and base not in real.parents:
        raise ValueError(
            f"{path}: symlink to {real}, outside the dataset folder {base}; copy the file into the dataset or "
            "point dataset_dir at the folder that holds it"
        )
    return str(real)


def check_file(path: str | os.PathLike) -> Path:
    """Checks that ``path`` is an existing, non-empty file.

    Raises:
        FileNotFoundError: if it is missing (or a broken symlink).
        ValueError: if it is empty.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty (0 bytes)")
    return path


def index_by_stem(paths: Iterable[Path], stem: Callable[[Path], str] = lambda p: p.stem) -> dict[str, Path]:
    """``{stem: path}``, refusing two files of one stem (``a.png`` and ``a.tif``), which would pair ambiguously.

    Raises:
        ValueError: naming both files.
    """
    out: dict[str, Path] = {}
    for path in paths:
        other = out.setdefault(stem(path), path)
        if other != path:
            raise ValueError(f"{path}: duplicate id {stem(path)!r}, also used by {other}; rename or remove one")
    return out


def check_unique_ids(items: Sequence[Mapping[str, Any]], where: str, origin: str = "image") -> None:
    """Refuses two items with one ``id`` (their predictions and split entries would collide).

    Args:
        items: the items, each with an ``id``.
        where: the dataset, for the message.
        origin: the item field that says where an item comes from (``image``, ``source``), for the message.

    Raises:
        ValueError: naming the id and where both items come from (their ``origin`` field).
    """
    seen: dict[Any, Mapping[str, Any]] = {}
    for item in items:
        first = seen.setdefault(item["id"], item)
        if first is not item:
            raise ValueError(
                f"{where}: duplicate id {item['id']!r} ({first.get(origin, '?')} and {item.get(origin, '?')}); "
                "ids must be unique"
            )


def text_lines(path: str | os.PathLike, max_bytes: int | None = None) -> Iterator[tuple[int, str]]:
    """Yields ``(line number, line)`` of a UTF-8 text file (newlines kept, a leading BOM dropped).

    Raises:
        ValueError: naming the file and line, for a line longer than ``max_bytes`` (default :data:`MAX_LINE_BYTES`),
            a NUL byte (binary data) or bytes that are not UTF-8.
    """
    limit = MAX_LINE_BYTES if max_bytes is None else max_bytes
    with open(path, "rb") as f:
        for num, raw in enumerate(iter(lambda: f.readline(limit + 1), b""), start=1):
            if len(raw) - raw.endswith(b"\n") > limit:
                raise ValueError(f"{path}:{num}: line longer than {limit} bytes")
            if b"\0" in raw:
                raise ValueError(f"{path}:{num}: NUL byte at column {raw.index(0) + 1}: binary data, not text")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path}:{num}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                ) from None
            yield num, text.removeprefix("\ufeff") if num == 1 else text


def read_json(path: str | os.PathLike) -> Any:
    """Reads a UTF-8 JSON file, refusing duplicate keys (JSON would keep the last one silently).

    Raises:
        ValueError: naming the file, if it is empty, not UTF-8, not JSON or has a duplicate key.
    """
    path = check_file(path)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"{path}: duplicate key {key!r}")
            out[key] = value
        return out

    try:
        return json.loads("".join(line for _, line in text_lines(path)), object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def npz_names(path: str | os.PathLike) -> list[str]:
    """The array names in an ``.npz`` file, after checking it is a readable zip archive.

    Raises:
        ValueError: naming the file, if it is empty, not a zip archive (wrong magic number) or a corrupt one.
    """
    path = check_file(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path}: not an .npz file (starts with {magic!r}; an .npz is a zip archive, 'PK')")
    try:
        with zipfile.ZipFile(path) as archive:
            return [name.removesuffix(".npy") for name in archive.namelist()]
    except Exception as exc:  # zipfile raises BadZipFile, OSError, EOFError, ... on truncated archives
        raise ValueError(f"{path}: corrupt or truncated .npz ({type(exc).__name__}: {exc})") from None


def _read_member(archive: zipfile.ZipFile, path: Path, name: str) -> np.ndarray:
    info = archive.getinfo(f"{name}.npy")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f"npy format version {version} is not supported")
        shape, _, dtype = read_header[version](f)
        if dtype.hasobject:
            raise ValueError(f"array {dtype} holds Python objects (pickled data), which medkit never loads")
        needed = math.prod(shape) * dtype.itemsize
        if info.file_size - f.tell() < needed:
            raise ValueError(f"truncated: its header {shape} {dtype} needs {needed} bytes")
    with archive.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def read_npz(path: str | os.PathLike, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Reads ``keys`` from an ``.npz`` file, checking each array's header against its size first; never unpickles.

    Raises:
        ValueError: naming the file (and the array), for a missing key, a wrong magic number, a truncated or corrupt
            archive or array, or an array of Python objects.
    """
    path = Path(path)
    names = npz_names(path)
    missing = [key for key in keys if key not in names]
    if missing:
        raise ValueError(f"{path} lacks arrays {missing}; found {sorted(names)}")
    out = {}
    with zipfile.ZipFile(path) as archive:
        for key in keys:
            try:
                out[key] = _read_member(archive, path, key)
            except Exception as exc:  # numpy and zipfile raise ValueError, OSError, BadZipFile, zlib.error, EOFError
                raise ValueError(f"{path}: array {key!r} cannot be read ({type(exc).__name__}: {exc})") from None
    return out
