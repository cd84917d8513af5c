"""Fetch the public datasets the bundles train on: one registry, one download / verify / unpack path.

Every dataset is a :class:`RemoteDataset` in :data:`DATASETS` (or a builder of one, for MedMNIST's flags and sizes):
the files to download (:class:`RemoteFile`), how each is unpacked (kept as it is, gunzipped, or extracted), and the
folder a bundle's ``--dataset_dir`` takes. :func:`fetch_dataset` runs every entry through the same steps, on top of
:mod:`medkit.data.download` (resumable download, checksums, safe extraction, streamed gunzip):

- **the checksum policy**: a published digest (sha256 or md5) is stored in the registry, with its source in a
  comment, and always checked. A file with **no published checksum** (DSB2018, CHASE_DB1, the ENCODE sequences) is
  downloaded and its sha256 reported, and nothing is unpacked until the caller passes the digest they trust
  (``sha256=...``, ``--sha256``) or turns verification off explicitly (``verify=False``, ``--no-verify``, warned);
- **idempotence**: a file whose outputs are present is not fetched again (a kept download with a published checksum
  is re-checked first), so a second run checks and skips;
- **a one-line error when offline**, naming the URL and where to get the data by hand;
- **manual datasets** (DRIVE, whose licence requires registration): :class:`ManualDownloadRequired` carries the
  steps, until the folder holds the data in the reader's layout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from medkit.data.download import download_file, extract_archive, file_digest, gunzip_file, mismatch

logger = logging.getLogger(__name__)

__all__ = [
    "DATASETS",
    "ManualDownloadRequired",
    "RemoteDataset",
    "RemoteFile",
    "download_file",
    "extract_archive",
    "fetch_dataset",
    "file_digest",
    "get_dataset",
    "medmnist_dataset",
    "train_command",
]

_UNPACK = ("none", "gunzip", "extract")


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file of a dataset.

    Attributes:
        url: direct download URL.
        path: where the download lands, relative to the data root (e.g. ``"pcam/x.h5.gz"``).
        sha256: published sha256, or ``None``.
        md5: published md5 (what most providers publish), or ``None``. Neither: the no-checksum policy applies.
        unpack: ``"none"`` (the download is the data), ``"gunzip"`` (written next to it without ``.gz``) or
            ``"extract"`` (a zip or tar archive, extracted into ``extract_to``).
        extract_to: folder relative to the data root that receives an archive's members.
        keep: keep the download after unpacking (``False`` saves PCam's 7 GB of ``.gz`` files).
    """

    url: str
    path: str
    sha256: str | None = None
    md5: str | None = None
    unpack: str = "none"
    extract_to: str | None = None
    keep: bool = True

    def __post_init__(self) -> None:
        if self.unpack not in _UNPACK or (self.unpack == "extract") != (self.extract_to is not None):
            raise ValueError(f"{self.path}: unpack must be one of {_UNPACK}, with extract_to exactly for 'extract'")

    def download_path(self, root: Path) -> Path:
        """Where the download lands: ``path``, or for ``unpack="none"`` a hidden ``.download/`` folder beside it, so
        that the file appears at ``path`` only once its checksum was checked (or verification was turned off)."""
        path = root / self.path
        return path.parent / ".download" / path.name if self.unpack == "none" else path

    def outputs(self, root: Path) -> list[Path]:
        """What this file leaves under ``root`` once fetched."""
        if self.unpack == "gunzip":
            return [root / self.path.removesuffix(".gz")]
        if self.unpack == "extract":
            return [root / self.extract_to]
        return [root / self.path]


@dataclass(frozen=True)
class RemoteDataset:
    """A dataset: its files, the folder a bundle reads, and the manual route.

    Attributes:
        name: registry key, e.g. ``"dsb2018"``.
        files: the files to download; empty for a dataset that must be downloaded by hand (``drive``).
        dataset_dir: the folder, relative to the data root, to pass as the bundle's ``--dataset_dir``.
        manual_hint: where to get the data by hand when the download fails (for a manual dataset: what to do,
            with ``{dest}`` for the folder).
        bundle: the bundle that reads it, for the printed training command.
        train_args: more overrides for that command (e.g. ``--flag pathmnist``).
        check: for a manual dataset, checks that ``dest`` holds it in the reader's layout (raises if not).
    """

    name: str
    files: tuple[RemoteFile, ...]
    dataset_dir: str
    manual_hint: str
    bundle: str | None = None
    train_args: str = ""
    check: Callable[[Path], None] | None = field(default=None, compare=False)


class ManualDownloadRequired(RuntimeError):
    """A dataset whose licence rules out an automatic download; ``instructions`` says where and how to lay it out."""

    def __init__(self, message: str, instructions: str) -> None:
        super().__init__(message)
        self.instructions = instructions


def _zenodo(record: str, name: str) -> str:
    return f"https://zenodo.org/records/{record}/files/{name}?download=1"


# Fashion-MNIST: URLs and MD5s from the zalandoresearch/fashion-mnist README (the same in torchvision's FashionMNIST).
_FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
# PatchCamelyon: Zenodo record 2546921; MD5s of the .h5.gz files from the basveeling/pcam README, except that the
# README's table swaps the valid and test rows: these pairings are torchvision.datasets.PCAM's (which checks them
# on every download) and those of other Zenodo-based downloaders.
_PCAM_MD5 = {
    "camelyonpatch_level_2_split_train_x.h5.gz": "1571f514728f59376b705fc836ff4b63",
    "camelyonpatch_level_2_split_train_y.h5.gz": "35c2d7259d906cfc8143347bb8e05be7",
    "camelyonpatch_level_2_split_valid_x.h5.gz": "d5b63470df7cfa627aeec8b9dc0c066e",
    "camelyonpatch_level_2_split_valid_y.h5.gz": "2b85f58b927af9964a4c15b8f7e8f179",
    "camelyonpatch_level_2_split_test_x.h5.gz": "d8c2d60d490dbd479f8199bdfa0cf6ec",
    "camelyonpatch_level_2_split_test_y.h5.gz": "60a7035772fbdb7f34eb86d4420cf66a",
}
# ENCODE ChIP-seq 101-bp bound / dinucleotide-shuffled sets of Zeng et al. 2016, as the example data of
# gifford-lab/Keras-genomics (MIT), pinned to the commit the shared copy came from; no checksum is published.
_ENCODE_COMMIT = "53b62b95566e9963805854274e729fc241dbcb3a"
_ENCODE_URL = f"https://raw.githubusercontent.com/gifford-lab/Keras-genomics/{_ENCODE_COMMIT}/example/"
_DRIVE_STEPS = """\
DRIVE cannot be downloaded by medkit: its licence requires registration and forbids redistribution.
1. Register and download DRIVE at https://drive.grand-challenge.org/ (Downloads: training.zip and test.zip).
2. Unzip both into {dest}, so that it holds
     {dest}/training/images/21_training.tif ... 40_training.tif
     {dest}/training/1st_manual/21_manual1.gif ...
     {dest}/training/mask/21_training_mask.gif ...
     {dest}/test/images/01_test.tif ... 20_test.tif
     {dest}/test/1st_manual/01_manual1.gif ...   (if your download has no test labels, see the bundle docs)
     {dest}/test/mask/01_test_mask.gif ...
3. Run `medkit data fetch drive` again to check the layout, then train with --dataset_dir {dest}"""


def _check_drive(dest: Path) -> None:
    from medkit.data.retina import RETINA_LAYOUTS, read_retina_split

    for folder in RETINA_LAYOUTS["drive"]["splits"].values():
        read_retina_split(dest / folder, "drive")


def medmnist_dataset(flag: str = "breastmnist", size: int = 28) -> RemoteDataset:
    """The MedMNIST ``<flag>`` file at ``size`` pixels, with the URL and MD5 that ``medmnist.INFO`` publishes.

    It lands as ``medmnist/<flag>.npz`` (28 px) or ``medmnist_<size>/<flag>.npz``: the name the medmnist_cls bundle
    looks for in its ``--dataset_dir``.

    Raises:
        ValueError: for a flag or size that ``medmnist.INFO`` does not list.
    """
    import medmnist

    info = medmnist.INFO.get(flag)
    if info is None:
        raise ValueError(f"unknown MedMNIST flag {flag!r}; expected one of {sorted(medmnist.INFO)}")
    suffix = "" if size == 28 else f"_{size}"
    if f"url{suffix}" not in info:
        sizes = sorted([28] + [int(k[4:]) for k in info if k.startswith("url_")])
        raise ValueError(f"MedMNIST {flag} has no {size}-pixel file; sizes: {sizes}")
    folder = "medmnist" if size == 28 else f"medmnist_{size}"
    file = RemoteFile(url=info[f"url{suffix}"], path=f"{folder}/{flag}.npz", md5=info[f"MD5{suffix}"])
    args = f"--flag {flag}" + ("" if size == 28 else f" --spatial_size {size}")
    hint = f"https://zenodo.org/records/10519652 ({flag}{suffix}.npz)"
    return RemoteDataset("medmnist", (file,), folder, hint, bundle="medmnist_cls", train_args=args)


DATASETS: dict[str, RemoteDataset | Callable[..., RemoteDataset]] = {
    "dsb2018": RemoteDataset(
        name="dsb2018",
        files=(
            RemoteFile(
                url="https://data.broadinstitute.org/bbbc/BBBC038/stage1_train.zip",
                path="dsb2018/stage1_train.zip",  # neither BBBC nor Kaggle publishes a checksum
                unpack="extract",
                extract_to="dsb2018/stage1_train",
            ),
        ),
        dataset_dir="dsb2018/stage1_train",
        manual_hint="https://www.kaggle.com/c/data-science-bowl-2018/data (stage1_train.zip)",
        bundle="nuclei_seg",
    ),
    "medmnist": medmnist_dataset,
    "fashion_mnist": RemoteDataset(
        name="fashion_mnist",
        files=tuple(
            RemoteFile(
                url=f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{name}",
                path=f"fashion_mnist/FashionMNIST/raw/{name}",
                md5=md5,
                unpack="gunzip",
            )
            for name, md5 in _FASHION_MD5.items()
        ),
        dataset_dir="fashion_mnist",
        manual_hint="https://github.com/zalandoresearch/fashion-mnist#get-the-data (the four *-ubyte.gz files)",
        bundle="fashion_vgg",
    ),
    "pcam": RemoteDataset(
        name="pcam",
        files=tuple(
            RemoteFile(url=_zenodo("2546921", name), path=f"pcam/{name}", md5=md5, unpack="gunzip", keep=False)
            for name, md5 in _PCAM_MD5.items()
        ),
        dataset_dir="pcam",
        manual_hint="https://zenodo.org/records/2546921 (the six camelyonpatch_level_2_split_*.h5.gz files)",
        bundle="pcam_transfer",
    ),
    "chase_db1": RemoteDataset(
        name="chase_db1",
        files=(
            RemoteFile(
                # the dataset page's download link (CC BY 4.0); Kingston University publishes no checksum
                url="https://researchinnovation.kingston.ac.uk/files/40659508/CHASEDB1.zip",
                path="chase_db1/CHASEDB1.zip",
                unpack="extract",
                extract_to="chase_db1/CHASEDB1",
            ),
        ),
        dataset_dir="chase_db1/CHASEDB1",
        manual_hint="https://researchinnovation.kingston.ac.uk/en/datasets/chasedb1-retinal-vessel-reference-dataset-4/",
        bundle="retina_vessel_seg",
        train_args="--dataset_layout chase_db1",
    ),
    "drive": RemoteDataset(
        name="drive",
        files=(),
        dataset_dir="drive",
        manual_hint=_DRIVE_STEPS,
        bundle="retina_vessel_seg",
        check=_check_drive,
    ),
    "encode_chipseq": RemoteDataset(
        name="encode_chipseq",
        files=tuple(
            RemoteFile(url=f"{_ENCODE_URL}{split}.{ext}", path=f"encode_chipseq/{split}.{ext}")
            for split in ("train", "valid", "test")
            for ext in ("fa", "target")
        ),
        dataset_dir="encode_chipseq",
        manual_hint=f"https://github.com/gifford-lab/Keras-genomics/tree/{_ENCODE_COMMIT}/example "
        "({train,valid,test}.{fa,target})",
        bundle="dna_binding",
    ),
}


def get_dataset(name: str, **options: object) -> RemoteDataset:
    """The registry entry ``name``, built with ``options`` (``flag``, ``size`` for ``medmnist``).

    Raises:
        ValueError: for an unknown name (listing the known ones) or options the entry does not take.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    entry = DATASETS[name]
    if isinstance(entry, RemoteDataset):
        if options:
            raise ValueError(f"dataset {name!r} takes no options, got {sorted(options)}")
        return entry
    return entry(**options)


def train_command(spec: RemoteDataset, dataset_dir: str | os.PathLike) -> str | None:
    """The command that trains ``spec.bundle`` on the fetched folder, or ``None`` for a dataset without a bundle."""
    if spec.bundle is None:
        return None
    command = f"python -m monai.bundle run --config_file bundles/{spec.bundle}/configs/train.json"
    return f"{command} --dataset_dir {dataset_dir} {spec.train_args}".rstrip()


def _unpack(file: RemoteFile, root: Path) -> None:
    download, (output,) = file.download_path(root), file.outputs(root)
    if file.unpack == "none":
        os.replace(download, output)
        with contextlib.suppress(OSError):  # the staging folder, once empty
            download.parent.rmdir()
    elif file.unpack == "gunzip":
        gunzip_file(download, output)
    elif file.unpack == "extract":
        partial = output.parent / f".{output.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            extract_archive(download, partial)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        if output.is_dir():
            output.rmdir()  # empty: a non-empty one counts as fetched
        os.replace(partial, output)
    if file.unpack != "none" and not file.keep:
        download.unlink()


def _present(file: RemoteFile, root: Path, verify: bool) -> bool:
    """Whether ``file`` was fetched: its outputs exist (a kept download with a published checksum must match it)."""
    for output in file.outputs(root):
        if not (output.is_file() or (output.is_dir() and any(output.iterdir()))):
            return False
    expected = {k: v for k, v in (("sha256", file.sha256), ("md5", file.md5)) if v}
    if file.unpack == "none" and verify and expected and mismatch(root / file.path, expected):
        logger.warning("%s does not match its published checksum; fetching it again", root / file.path)
        return False
    return True


def _overrides(
    spec: RemoteDataset, url: str | None, base_url: str | None, sha256: str | dict[str, str] | None
) -> RemoteDataset:
    """``spec`` with a URL (one-file datasets), a base URL (every file: ``<base_url>/<file name>``) and trusted
    sha256 digests (a digest for a one-file dataset, or ``{file name: digest}``) put in."""
    files = list(spec.files)
    if url is not None:
        if len(files) != 1:
            raise ValueError(f"--url needs a one-file dataset; {spec.name} has {len(files)} files: use --base-url")
        files[0] = replace(files[0], url=url)
    if base_url is not None:
        files = [replace(f, url=f"{base_url.rstrip('/')}/{PurePosixPath(f.path).name}") for f in files]
    if isinstance(sha256, str):
        if len(files) != 1:
            raise ValueError(f"{spec.name} has {len(files)} files: give each digest as <file name>=<sha256>")
        sha256 = {PurePosixPath(files[0].path).name: sha256}
    names = {PurePosixPath(f.path).name for f in files}
    unknown = sorted(set(sha256 or {}) - names)
    if unknown:
        raise ValueError(f"--sha256 names {unknown}, which are not files of {spec.name}: {sorted(names)}")
    files = [replace(f, sha256=(sha256 or {}).get(PurePosixPath(f.path).name, f.sha256)) for f in files]
    return replace(spec, files=tuple(files))


def fetch_dataset(
    name_or_spec: str | RemoteDataset,
    data_root: str | os.PathLike = "data",
    url: str | None = None,
    sha256: str | dict[str, str] | None = None,
    verify: bool = True,
    base_url: str | None = None,
    **options: object,
) -> Path:
    """Download, verify and unpack a dataset under ``data_root`` in the layout its bundle reads.

    Files whose outputs are present are skipped (module docstring); downloads are kept next to what they unpack to
    (except where the registry says otherwise), so a retry does not download them again.

    Args:
        name_or_spec: a key of :data:`DATASETS` or a :class:`RemoteDataset`.
        data_root: root folder for datasets.
        url: download URL override for a one-file dataset (a mirror or a local server).
        sha256: trusted sha256 of a one-file dataset, or ``{file name: sha256}``; overrides the registry value.
        verify: if False, skip checksum verification (logged as a warning, with the sha256 of each download).
        base_url: replaces every file's URL by ``<base_url>/<file name>`` (a mirror or a local server).
        options: the registry builder's options (``flag``, ``size`` for ``medmnist``).

    Returns:
        The folder to pass as the bundle's ``--dataset_dir``, e.g. ``data/dsb2018/stage1_train`` for ``"dsb2018"``.

    Raises:
        ValueError: for an unknown dataset or option, a checksum mismatch, an unsafe archive, or files without a known
            checksum while ``verify`` is True (naming each file's sha256 and the options that proceed).
        RuntimeError: if a download fails; one line naming the URL and how to get the data by hand.
        ManualDownloadRequired: for a dataset that must be downloaded by hand and is not in place yet.
    """
    spec = get_dataset(name_or_spec, **options) if isinstance(name_or_spec, str) else name_or_spec
    spec = _overrides(spec, url, base_url, sha256)
    root = Path(data_root)
    dest = root / spec.dataset_dir
    if not spec.files:
        return _manual(spec, dest)
    pending = [f for f in spec.files if not _present(f, root, verify)]
    if not pending:
        logger.info("%s already present at %s, nothing to fetch", spec.name, dest)
        return dest
    for file in pending:
        sha, md5 = (file.sha256, file.md5) if verify else (None, None)
        try:
            download_file(file.url, file.download_path(root), sha, md5)
        except RuntimeError as exc:
            raise RuntimeError(
                f"{exc}. Download it manually from {spec.manual_hint} into {(root / file.path).parent}, "
                f"then pass --dataset_dir {dest}"
            ) from exc
    unverified = [f for f in pending if not (verify and (f.sha256 or f.md5))]
    if unverified:
        digests = {PurePosixPath(f.path).name: file_digest(f.download_path(root)) for f in unverified}
        listed = ", ".join(f"{name} has sha256 {digest}" for name, digest in digests.items())
        if verify:
            flags = " ".join(f"--sha256 {n}={d}" for n, d in digests.items()) if len(digests) > 1 else ""
            flags = flags or f"--sha256 {next(iter(digests.values()))}"
            raise ValueError(
                f"no published checksum for {spec.name}; {listed}. Check them, then pass {flags} to proceed, "
                "or --no-verify (verify=False) to skip verification"
            )
        logger.warning("checksum verification disabled for %s: %s", spec.name, listed)
    for file in pending:
        _unpack(file, root)
    logger.info("%s ready at %s", spec.name, dest)
    return dest


def _manual(spec: RemoteDataset, dest: Path) -> Path:
    """A dataset downloaded by hand: ``dest`` when its layout checks out, else :class:`ManualDownloadRequired`."""
    instructions = spec.manual_hint.format(dest=dest)
    if not dest.is_dir():
        raise ManualDownloadRequired(f"{spec.name} must be downloaded by hand into {dest}", instructions)
    try:
        if spec.check is not None:
            spec.check(dest)
    except (ValueError, FileNotFoundError) as exc:
        raise ManualDownloadRequired(
            f"{dest} does not hold {spec.name} in the expected layout: {exc}", instructions
        ) from exc
    logger.info("%s found at %s", spec.name, dest)
    return dest
