"""Download, verify and extract public datasets into ``data/``: medkit's policy on top of :mod:`monai.apps`.

New datasets are one :class:`RemoteDataset` entry in :data:`DATASETS`. :func:`fetch_dataset` downloads the archive
with :func:`monai.apps.download_url` (temporary file, checksum check) and unpacks it with
:func:`monai.apps.extractall` (member paths checked). What medkit keeps on top, because MONAI does not do it:

- **the checksum policy.** A published digest is stored in the registry and always checked. The DSB2018 / BBBC038
  ``stage1_train.zip`` has **no published checksum** (none found on the BBBC or Kaggle pages), so its ``sha256`` is
  ``None``: the fetcher downloads it, logs its sha256 and refuses to extract it unless the caller passes a digest they
  trust (``sha256=...``, ``--sha256``) or turns verification off explicitly (``verify=False``, ``--no-verify``,
  warned). :func:`monai.apps.download_and_extract` is not used because it unpacks straight after downloading, with no
  point at which to refuse, and asks the server for the file name through ``requests``;
- **a one-line error when offline**, naming the URL and where to get the data by hand (MONAI re-raises urllib's
  exceptions after logging a line of its own);
- **checks before anything is written**: every archive member name, including Windows drive and ``..\\`` names
  that MONAI accepts on POSIX, is checked before the first member is extracted (MONAI checks each member as it
  writes it, so a bad name late in an archive would leave the earlier members behind);
- **stdout stays the caller's**: MONAI's ``monai.apps`` logger prints to stdout, so during these calls its records go
  through :mod:`logging` instead (``medkit data fetch`` prints its result on stdout);
- **no torch at import**: :mod:`monai` imports torch, so it is imported inside the functions and ``medkit.data``
  (used by ``medkit data fetch``) stays light.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import urllib.error
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath, PureWindowsPath

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
    """Return the hex digest of a file, read in chunks (MONAI's ``check_hash`` compares but does not report one)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


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


@contextlib.contextmanager
def _socket_timeout(timeout: float) -> Iterator[None]:
    """Sets the default socket timeout for the ``urlretrieve`` inside MONAI, which takes no timeout argument."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _matches(path: Path, expected: dict[str, str]) -> bool:
    """Whether ``path`` has every expected digest (``monai.apps.check_hash``; a mismatch is logged by MONAI)."""
    from monai.apps import check_hash

    with _monai_logs_to_logging():
        return all(check_hash(path, value, algorithm) for algorithm, value in expected.items())


def _download(url: str, part: Path, dest: Path, expected: dict[str, str], timeout: float) -> None:
    """``monai.apps.download_url`` to ``part``, checking the first expected digest; errors name ``dest``."""
    from monai.apps import HashCheckError, download_url

    hash_type, hash_val = next(iter(expected.items()), ("sha256", None))
    try:
        with _monai_logs_to_logging(), _socket_timeout(timeout), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No hash value provided")  # medkit's policy speaks instead
            download_url(url, part, hash_val=hash_val, hash_type=hash_type, progress=sys.stderr.isatty())
    except HashCheckError as exc:
        raise ValueError(f"{hash_type} mismatch for {dest}: expected {hash_val}; {url} was not saved") from exc
    except _NETWORK_ERRORS as exc:
        is_url_error = isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError)
        reason = " ".join(str(exc.reason if is_url_error else exc).split()) or type(exc).__name__
        raise RuntimeError(f"could not download {url} ({reason})") from exc
    if not part.is_file():  # MONAI passes over PermissionError and NotADirectoryError
        raise RuntimeError(f"could not download {url} (nothing was written to {part})")


def download_file(
    url: str,
    dest: str | os.PathLike,
    expected_sha256: str | None = None,
    expected_md5: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` with :func:`monai.apps.download_url` and verify its checksums.

    An existing ``dest`` whose checksums match (or that has no expected checksum) is reused without downloading; one
    that does not match is downloaded again (MONAI would raise). MONAI downloads into a temporary folder; the file
    then lands in a hidden folder next to ``dest`` and is renamed onto it, so ``dest`` never holds a partial file
    (MONAI's own final move is a copy when the temporary folder is on another file system). A progress bar is shown
    on a terminal and nothing otherwise.

    Changed from medkit's own downloader: a checksum mismatch no longer names the digest that was downloaded (MONAI
    deletes the file; its ``monai.apps`` logger records the digest at ERROR level), the ``chunk_size`` argument is
    gone, and ``timeout`` is applied as the process-wide default socket timeout while the download runs, because
    MONAI's ``urlretrieve`` takes none.

    Args:
        url: the URL to download.
        dest: the destination file path; its folder is created.
        expected_sha256: expected sha256 hex digest, or ``None`` to skip that check.
        expected_md5: expected md5 hex digest, or ``None`` to skip that check.
        timeout: socket timeout in seconds.

    Returns:
        The path of the downloaded file.

    Raises:
        ValueError: if a checksum does not match (naming the file, the algorithm and the expected digest); nothing
            is left at ``dest``.
        RuntimeError: if the download fails (one line naming the URL and the reason).
    """
    dest = Path(dest)
    pairs = (("sha256", expected_sha256), ("md5", expected_md5))
    expected = {algorithm: value.lower() for algorithm, value in pairs if value is not None}
    if dest.is_file():
        if _matches(dest, expected):
            logger.info("%s already present, not downloading %s", dest, url)
            return dest
        logger.warning("%s does not match the expected checksum; downloading it again", dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        logger.info("downloading %s to %s", url, dest)
        _download(url, tmp_dir / dest.name, dest, expected, timeout)
        for algorithm, value in list(expected.items())[1:]:  # download_url checks one digest; md5 when both given
            if not _matches(tmp_dir / dest.name, {algorithm: value}):
                raise ValueError(f"{algorithm} mismatch for {dest}: expected {value}; {url} was not saved")
        os.replace(tmp_dir / dest.name, dest)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info("saved %s", dest)
    return dest


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

    Every member name is checked before anything is written (see the module docstring for what this adds to MONAI's
    per-member check). Changed from medkit's own extractor: links in tar archives are refused rather than checked,
    empty folders are not recreated, and a non-empty ``dest`` is an error (MONAI would skip it silently).

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


def fetch_dataset(
    name_or_spec: str | RemoteDataset,
    data_root: str | os.PathLike = "data",
    url: str | None = None,
    sha256: str | None = None,
    verify: bool = True,
) -> Path:
    """Download, verify and extract a dataset into ``data_root/<extract_to>``.

    A non-empty extraction folder counts as fetched. The archive is kept next to it, so a retry does not download again.
    The archive is unpacked into a hidden folder that is renamed into place once complete.

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
    try:
        download_file(spec.url, archive, spec.sha256 if verify else None, spec.md5 if verify else None)
    except RuntimeError as exc:
        raise RuntimeError(
            f"{exc}. Download it manually from {spec.manual_hint} and unzip it into {dest}, "
            f"then pass --dataset_dir {dest}"
        ) from exc
    if not verify or (spec.sha256 is None and spec.md5 is None):
        actual = file_digest(archive)
        if verify:
            raise ValueError(
                f"no published checksum for {spec.name}; {archive} has sha256 {actual}. Check it, then pass "
                f"sha256={actual} (--sha256 {actual}) to proceed, or verify=False (--no-verify) to skip verification"
            )
        logger.warning("checksum verification disabled for %s; sha256 of %s is %s", spec.url, archive, actual)
    partial = dest.parent / f".{dest.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        extract_archive(archive, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if dest.is_dir():
        dest.rmdir()  # empty, checked above
    os.replace(partial, dest)
    logger.info("%s ready at %s", spec.name, dest)
    return dest
