"""Download, verify and extract public datasets into ``data/``.

New datasets are one :class:`RemoteDataset` entry in :data:`DATASETS`; :func:`fetch_dataset` downloads the archive
atomically (:func:`download_file`), verifies it and unpacks it safely (:func:`extract_archive`).

Checksums: a published digest is stored in the registry and always checked. The DSB2018 / BBBC038
``stage1_train.zip`` has **no published checksum** (none found on the BBBC or Kaggle pages), so its ``sha256`` is
``None``: the fetcher downloads it, logs its sha256 and refuses to extract it unless the caller passes a digest they
trust (``sha256=...``, ``--sha256``) or turns verification off explicitly (``verify=False``, ``--no-verify``, warned).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from tqdm import tqdm

logger = logging.getLogger(__name__)

__all__ = ["DATASETS", "RemoteDataset", "download_file", "extract_archive", "fetch_dataset", "file_digest"]

_NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)


@dataclass(frozen=True)
class RemoteDataset:
    """A downloadable dataset archive.

    Attributes:
        name: registry key, e.g. ``"dsb2018"``.
        url: direct download URL of the archive.
        sha256: published sha256 of the archive, or ``None`` when none is published.
        filename: archive file name, stored next to the extracted folder.
        extract_to: folder relative to the data root that receives the archive contents.
        manual_hint: where to get the archive by hand when the download fails.
        md5: published md5 of the archive, when that is all the provider publishes.
    """

    name: str
    url: str
    sha256: str | None
    filename: str
    extract_to: str
    manual_hint: str
    md5: str | None = None


DATASETS: dict[str, RemoteDataset] = {
    "dsb2018": RemoteDataset(
        name="dsb2018",
        url="https://data.broadinstitute.org/bbbc/BBBC038/stage1_train.zip",
        sha256=None,  # neither BBBC nor Kaggle publishes a checksum for stage1_train.zip
        filename="stage1_train.zip",
        extract_to="dsb2018/stage1_train",
        manual_hint="https://www.kaggle.com/c/data-science-bowl-2018/data (stage1_train.zip)",
    ),
}


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Return the hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _check_digests(path: Path, expected: dict[str, str | None], actual: dict[str, str] | None = None) -> None:
    """Raise ValueError naming the file and both digests if any expected digest differs."""
    for algorithm, want in expected.items():
        if want is None:
            continue
        got = actual[algorithm] if actual else file_digest(path, algorithm)
        if got.lower() != want.lower():
            raise ValueError(f"{algorithm} mismatch for {path}: expected {want.lower()}, got {got}")


def _stream(response: http.client.HTTPResponse, out: BinaryIO, url: str, chunk_size: int) -> dict[str, str]:
    """Copy ``response`` to ``out`` and return its digests; log progress every ~10% (10 MB if size unknown)."""
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    step, done, next_log = (max(total // 10, 1) if total else 10 << 20), 0, 0
    digests = {"sha256": hashlib.sha256(), "md5": hashlib.md5(usedforsecurity=False)}
    bar = tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name) if sys.stderr.isatty() else None
    try:
        while chunk := response.read(chunk_size):
            out.write(chunk)
            for digest in digests.values():
                digest.update(chunk)
            done += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
            elif done >= next_log:
                pct = f" ({100 * done / total:.0f}%)" if total else ""
                logger.info("downloaded %.1f MB%s of %s", done / 2**20, pct, url)
                next_log = done + step
    finally:
        if bar is not None:
            bar.close()
    if total is not None and done != total:
        raise ConnectionError(f"connection closed after {done} of {total} bytes")
    return {name: digest.hexdigest() for name, digest in digests.items()}


def download_file(
    url: str,
    dest: str | os.PathLike,
    expected_sha256: str | None = None,
    expected_md5: str | None = None,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Stream ``url`` to ``dest`` atomically and verify its checksum.

    An existing ``dest`` whose checksum matches (or that has no expected checksum) is reused without downloading.

    Args:
        url: the URL to download.
        dest: the destination file path; its folder is created.
        expected_sha256: expected sha256 hex digest, or ``None`` to skip that check.
        expected_md5: expected md5 hex digest, or ``None`` to skip that check.
        timeout: socket timeout in seconds.
        chunk_size: bytes read per chunk.

    Returns:
        The path of the downloaded file.

    Raises:
        ValueError: if a checksum does not match; the downloaded file is deleted.
        RuntimeError: if the download fails (one line naming the URL and the reason).
    """
    dest = Path(dest)
    expected = {"sha256": expected_sha256, "md5": expected_md5}
    if dest.is_file():
        try:
            _check_digests(dest, expected)
            logger.info("%s already present, not downloading %s", dest, url)
            return dest
        except ValueError as exc:
            logger.warning("%s; downloading it again", exc)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            logger.info("downloading %s to %s", url, dest)
            actual = _stream(response, out, url, chunk_size)
        _check_digests(dest, expected, actual)
        os.replace(tmp, dest)
    except _NETWORK_ERRORS as exc:
        tmp.unlink(missing_ok=True)
        is_url_error = isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError)
        reason = " ".join(str(exc.reason if is_url_error else exc).split()) or type(exc).__name__
        raise RuntimeError(f"could not download {url} ({reason})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("saved %s (sha256 %s)", dest, actual["sha256"])
    return dest


def _check_member(archive: Path, name: str) -> None:
    """Reject archive member names that would land outside the extraction folder."""
    posix, windows = PurePosixPath(name.replace("\\", "/")), PureWindowsPath(name)
    if posix.is_absolute() or windows.drive or windows.root or ".." in posix.parts:
        raise ValueError(f"unsafe member {name!r} in archive {archive}: absolute paths and '..' are not allowed")


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a zip or tar(.gz) archive into ``dest``; every member name is checked before anything is written.

    Args:
        archive: path of the ``.zip``, ``.tar``, ``.tar.gz`` or ``.tgz`` file.
        dest: folder that receives the members; created if missing.

    Returns:
        ``dest`` as a Path.

    Raises:
        ValueError: for a member (or tar link) name that is absolute or contains ``..``, or an unsupported format.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                _check_member(archive, name)
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as tf:
            for member in tf.getmembers():
                _check_member(archive, member.name)
                if member.issym() or member.islnk():
                    _check_member(archive, member.linkname)
            # PEP 706 "data" filter (when available) also blocks device files and unsafe permissions
            tf.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    else:
        raise ValueError(f"unsupported archive format: {archive} (expected zip or tar)")
    logger.info("extracted %s into %s", archive, dest)
    return dest


def fetch_dataset(
    name_or_spec: str | RemoteDataset,
    data_root: str | os.PathLike = "data",
    url: str | None = None,
    sha256: str | None = None,
    verify: bool = True,
) -> Path:
    """Download, verify and extract a dataset into ``data_root/<extract_to>``.

    A non-empty extraction folder counts as fetched. The archive is kept next to it, so a retry does not download again.

    Args:
        name_or_spec: a key of :data:`DATASETS` or a :class:`RemoteDataset`.
        data_root: root folder for datasets.
        url: override for the download URL (a mirror or a local server).
        sha256: trusted sha256 of the archive; overrides the registry value.
        verify: if False, skip checksum verification (logged as a warning).

    Returns:
        The extracted dataset folder, e.g. ``data/dsb2018/stage1_train`` for ``"dsb2018"``.

    Raises:
        ValueError: for an unknown dataset, a checksum mismatch, or no known checksum while ``verify`` is True.
        RuntimeError: if the download fails; one line naming the URL and how to get the data by hand.
    """
    if isinstance(name_or_spec, str) and name_or_spec not in DATASETS:
        raise ValueError(f"unknown dataset {name_or_spec!r}; known datasets: {', '.join(sorted(DATASETS))}")
    spec = DATASETS[name_or_spec] if isinstance(name_or_spec, str) else name_or_spec
    spec = replace(spec, url=url or spec.url, sha256=sha256 or spec.sha256)
    dest = Path(data_root) / spec.extract_to
    if dest.is_dir() and any(dest.iterdir()):
        logger.info("%s already present at %s, nothing to fetch", spec.name, dest)
        return dest
    archive = dest.parent / spec.filename
    known = spec.sha256 is not None or spec.md5 is not None
    try:
        download_file(spec.url, archive, spec.sha256 if verify else None, spec.md5 if verify else None)
    except RuntimeError as exc:
        raise RuntimeError(
            f"{exc}. Download it manually from {spec.manual_hint} and unzip it into {dest}, "
            f"then pass --dataset_dir {dest}"
        ) from exc
    if not verify or not known:
        actual = file_digest(archive)
        if verify:
            raise ValueError(
                f"no published checksum for {spec.name}; {archive} has sha256 {actual}. Check it, then pass "
                f"sha256={actual} (--sha256 {actual}) to proceed, or verify=False (--no-verify) to skip verification"
            )
        logger.warning("checksum verification disabled for %s; sha256 of %s is %s", spec.url, archive, actual)
    partial = dest.parent / f".{dest.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    extract_archive(archive, partial)
    if dest.is_dir():
        dest.rmdir()  # empty, checked above
    os.replace(partial, dest)
    logger.info("%s ready at %s", spec.name, dest)
    return dest
