"""Download, verify and unpack single files: the mechanics under :mod:`medkit.data.fetch`'s registry.

- :func:`download_file` resumes: bytes go to a hidden ``.<name>.part`` file next to the destination, and a retry after
  a dropped connection asks the server for the rest (HTTP ``Range``). MONAI's ``download_url`` is not used because it
  always starts again from the first byte, in a fresh temporary folder, which does not do for PCam's 6 GB training
  file. Checksums (sha256, md5) are checked before the file is renamed into place; a mismatch deletes it.
- :func:`extract_archive` checks every member name before the first is written, then calls
  :func:`monai.apps.extractall`; :func:`gunzip_file` streams a gzip file. Both write a hidden temporary file or
  folder that is renamed into place when complete.
- stdout stays the caller's: MONAI's ``monai.apps`` logger prints to stdout, so its records go through
  :mod:`logging` while archives are extracted; the progress bar (tqdm) goes to stderr, and only on a terminal.
- no torch at import: :mod:`monai` imports torch, so it is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

logger = logging.getLogger(__name__)

__all__ = ["NETWORK_ERRORS", "download_file", "extract_archive", "file_digest", "gunzip_file", "mismatch"]

NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Return the hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def mismatch(path: Path, expected: dict[str, str]) -> tuple[str, str, str] | None:
    """``(algorithm, expected, actual)`` for the first digest of ``path`` that differs, else ``None``."""
    for algorithm, value in expected.items():
        actual = file_digest(path, algorithm)
        if actual != value:
            return algorithm, value, actual
    return None


@contextlib.contextmanager
def _monai_logs_to_logging() -> Iterator[None]:
    """Routes the ``monai.apps`` logger through :mod:`logging` instead of the stdout handler MONAI gives it."""
    monai_logger = logging.getLogger("monai.apps")
    handlers, propagate = list(monai_logger.handlers), monai_logger.propagate
    for handler in handlers:
        monai_logger.removeHandler(handler)
    monai_logger.propagate = True
    try:
        yield
    finally:
        monai_logger.propagate = propagate
        for handler in handlers:
            monai_logger.addHandler(handler)


def _open(url: str, offset: int, timeout: float) -> tuple[http.client.HTTPResponse | None, int, int | None]:
    """GET ``url`` from byte ``offset``: ``(response, offset the body starts at, total size or None)``.

    The response is ``None`` when the server says the range starts at the end (the part is complete). A server that
    ignores ``Range`` answers 200 and the body starts at 0.
    """
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None, offset, None
        raise
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match[1]) != offset:
            response.close()
            raise ConnectionError(f"the server answered range {response.headers.get('Content-Range')!r}")
        return response, offset, None if match[2] == "*" else int(match[2])
    length = response.headers.get("Content-Length")
    return response, 0, int(length) if length else None


def _download_part(url: str, part: Path, timeout: float) -> None:
    """Appends the rest of ``url`` to ``part`` (or writes it whole), with a progress bar on a terminal."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.is_file() else 0
    response, start, total = _open(url, offset, timeout)
    if response is None:
        return
    if offset:
        logger.info("resuming %s at byte %d", url, start)
    with response, open(part, "ab" if start else "wb") as f:
        bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=part.name[1:-5], file=sys.stderr,
                   disable=not sys.stderr.isatty())  # fmt: skip
        with bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise ConnectionError(f"the connection closed at byte {size} of {total}; run again to resume")


def download_file(
    url: str,
    dest: str | os.PathLike,
    expected_sha256: str | None = None,
    expected_md5: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming an interrupted download, and verify its checksums.

    An existing ``dest`` whose checksums match (or that has no expected checksum) is reused without downloading; one
    that does not match is downloaded again. Bytes go to ``.<name>.part`` next to ``dest``, which is renamed onto it
    only once every checksum matches, so ``dest`` never holds a partial or wrong file. After a network error the part
    is kept, and the next call asks the server for the remaining bytes (a server without ranges sends it all again).
    A resumed file that does not match is downloaded once more from the start. A progress bar is shown on a terminal.

    Args:
        url: the URL to download.
        dest: the destination file path; its folder is created.
        expected_sha256: expected sha256 hex digest, or ``None`` to skip that check.
        expected_md5: expected md5 hex digest, or ``None`` to skip that check.
        timeout: socket timeout in seconds.

    Returns:
        The path of the downloaded file.

    Raises:
        ValueError: if a checksum does not match (naming the file, the algorithm, the expected and the downloaded
            digest); nothing is left at ``dest`` or in the part file.
        RuntimeError: if the download fails (one line naming the URL and the reason).
    """
    dest = Path(dest)
    pairs = (("sha256", expected_sha256), ("md5", expected_md5))
    expected = {algorithm: value.lower() for algorithm, value in pairs if value is not None}
    if dest.is_file():
        if mismatch(dest, expected) is None:
            logger.info("%s already present, not downloading %s", dest, url)
            return dest
        logger.warning("%s does not match the expected checksum; downloading it again", dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    for _ in range(2):
        resumed = part.is_file() and part.stat().st_size > 0
        logger.info("downloading %s to %s", url, dest)
        try:
            _download_part(url, part, timeout)
        except NETWORK_ERRORS as exc:
            if part.is_file() and part.stat().st_size == 0:
                part.unlink()
            is_url_error = isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError)
            reason = " ".join(str(exc.reason if is_url_error else exc).split()) or type(exc).__name__
            raise RuntimeError(f"could not download {url} ({reason})") from exc
        bad = mismatch(part, expected)
        if bad is None:
            os.replace(part, dest)
            logger.info("saved %s", dest)
            return dest
        part.unlink()
        logger.warning("%s mismatch for %s: expected %s, downloaded %s", bad[0], dest, bad[1], bad[2])
        if not resumed:
            break
        logger.warning("the resumed download of %s did not match; downloading it again from the start", url)
    raise ValueError(f"{bad[0]} mismatch for {dest}: expected {bad[1]}, downloaded {bad[2]}; {url} was not saved")


def _check_member(archive: Path, name: str) -> None:
    """Reject archive member names that would land outside the extraction folder, on POSIX or on Windows."""
    posix, windows = PurePosixPath(name.replace("\\", "/")), PureWindowsPath(name)
    if posix.is_absolute() or windows.drive or windows.root or ".." in posix.parts:
        raise ValueError(f"unsafe member {name!r} in archive {archive}: absolute paths and '..' are not allowed")


def _member_names(archive: Path) -> tuple[str, list[str]]:
    """The archive type (``"zip"`` or ``"tar"``, read from the content, not the name) and its member names."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return "zip", zf.namelist()
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
        for member in members:
            if member.issym() or member.islnk():  # MONAI refuses links too, but only when it reaches them
                raise ValueError(f"unsafe member {member.name!r} in archive {archive}: links are not allowed")
        return "tar", [member.name for member in members]
    raise ValueError(f"unsupported archive format: {archive} (expected zip or tar)")


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a zip or tar(.gz) archive into ``dest`` with :func:`monai.apps.extractall`.

    Every member name, including Windows drive and ``..\\`` names that MONAI accepts on POSIX, is checked before
    anything is written (MONAI checks each member as it writes it, so a bad name late in an archive would leave the
    earlier members behind). Links in tar archives are refused, and a non-empty ``dest`` is an error (MONAI would skip
    it silently).

    Args:
        archive: path of the ``.zip``, ``.tar``, ``.tar.gz`` or ``.tgz`` file.
        dest: folder that receives the members; created if missing.

    Returns:
        ``dest`` as a Path.

    Raises:
        ValueError: for a member name that is absolute or contains ``..``, a tar link, an unsupported format, or a
            non-empty ``dest``.
    """
    from monai.apps import extractall

    archive, dest = Path(archive), Path(dest)
    if dest.is_dir() and any(dest.iterdir()):
        raise ValueError(f"cannot extract {archive} into {dest}: the folder is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    file_type, names = _member_names(archive)
    for name in names:
        _check_member(archive, name)
    with _monai_logs_to_logging():
        extractall(archive, dest, file_type=file_type, has_base=False)
    logger.info("extracted %s into %s", archive, dest)
    return dest


def gunzip_file(source: str | os.PathLike, dest: str | os.PathLike, chunk_size: int = 1 << 24) -> Path:
    """Decompress a gzip file in chunks (never whole in memory) to a hidden file renamed onto ``dest`` when complete.

    Raises:
        ValueError: naming ``source`` if it is not gzip data or ends early; nothing is left at ``dest``.
    """
    source, dest = Path(source), Path(dest)
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        with gzip.open(source, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, chunk_size)
    except (OSError, EOFError) as exc:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"{source} is not a complete gzip file ({exc}); delete it and fetch again") from exc
    os.replace(tmp, dest)
    logger.info("decompressed %s to %s", source, dest)
    return dest
