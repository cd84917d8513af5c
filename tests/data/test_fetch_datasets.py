"""Every ``medkit data fetch`` target end to end against a local HTTP server on 127.0.0.1 (no internet).

Each test generates small files in the real format (MedMNIST npz, gzipped IDX, gzipped PCam HDF5, the CHASE_DB1 zip,
FASTA + one-hot targets), serves them by file name (``base_url``), fetches them through the registry entry and reads
the result back with the bundle's own reader. Where the registry pins a published checksum, the test entry carries
the generated file's checksum instead (:func:`_pinned`); everything else (paths, unpacking, layout) is the registry's.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fetch_server import FileServer, dead_url
from PIL import Image

from medkit.cli import main as medkit_main
from medkit.data.fetch import DATASETS, ManualDownloadRequired, RemoteDataset, fetch_dataset, get_dataset, train_command

FASTA_SPLITS = {"train": 4, "valid": 2, "test": 2}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep requests to 127.0.0.1 away from any proxy configured in the environment."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server(tmp_path: Path):
    (tmp_path / "srv").mkdir()
    srv = FileServer(tmp_path / "srv")
    yield srv
    srv.close()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serve(server: FileServer, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (server.root / name).write_bytes(data)


def _pinned(spec: RemoteDataset, server: FileServer) -> RemoteDataset:
    """The registry entry with each published md5 replaced by the md5 of the file the server holds."""
    files = [dataclasses.replace(f, md5=_md5((server.root / Path(f.path).name).read_bytes())) for f in spec.files]
    assert all(f.md5 for f in spec.files), "only for entries whose checksums are published"
    return dataclasses.replace(spec, files=tuple(files))


def test_registry_sweep() -> None:
    """Every entry builds, points at a public URL with a well-formed (or no) checksum and names its bundle."""
    assert sorted(DATASETS) == ["chase_db1", "drive", "dsb2018", "encode_chipseq", "fashion_mnist", "medmnist", "pcam"]
    for name in DATASETS:
        spec = get_dataset(name)
        assert spec.name == name and spec.bundle and spec.manual_hint
        for file in spec.files:
            assert file.url.startswith(("https://", "http://")) and Path(file.path).parts[0] in spec.dataset_dir
            assert file.md5 is None or len(file.md5) == 32
            assert file.sha256 is None
        command = train_command(spec, Path("data") / spec.dataset_dir)
        assert command.startswith(f"python -m monai.bundle run --config_file bundles/{spec.bundle}/configs/train.json")
        assert f"--dataset_dir data/{spec.dataset_dir}" in command
        assert (Path(__file__).resolve().parents[2] / "bundles" / spec.bundle / "configs" / "train.json").is_file()
    assert [len(get_dataset(n).files) for n in ("fashion_mnist", "pcam", "encode_chipseq")] == [4, 6, 6]
    with pytest.raises(ValueError, match="'pcam' takes no options"):
        get_dataset("pcam", flag="x")


def test_medmnist_uses_medmnist_info(tmp_path: Path, server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import medmnist

    from medkit.data.medmnist import find_medmnist_npz, generate_medmnist_npz, read_medmnist_npz

    npz = generate_medmnist_npz(server.root / "pneumoniamnist.npz", "pneumoniamnist", counts=(6, 2, 2), size=28)
    info = medmnist.INFO["pneumoniamnist"]
    spec = get_dataset("medmnist", flag="pneumoniamnist")
    assert spec.files[0].url == info["url"] and spec.files[0].md5 == info["MD5"]
    assert spec.dataset_dir == "medmnist" and spec.train_args == "--flag pneumoniamnist"
    with pytest.raises(ValueError, match=f"md5 mismatch for .*pneumoniamnist.npz: expected {info['MD5']}"):
        fetch_dataset("medmnist", tmp_path / "data", base_url=server.base_url, flag="pneumoniamnist")
    assert not any((tmp_path / "data").rglob("*.npz"))

    monkeypatch.setitem(info, "MD5", _md5(npz.read_bytes()))
    dest = fetch_dataset("medmnist", tmp_path / "data", base_url=server.base_url, flag="pneumoniamnist")
    assert dest == tmp_path / "data" / "medmnist"
    splits = read_medmnist_npz(find_medmnist_npz(dest, "pneumoniamnist"), "pneumoniamnist")
    assert [len(splits[s][1]) for s in ("train", "val", "test")] == [6, 2, 2]

    big = get_dataset("medmnist", flag="pathmnist", size=64)
    assert big.files[0].url == medmnist.INFO["pathmnist"]["url_64"] and big.files[0].path == "medmnist_64/pathmnist.npz"
    assert big.train_args == "--flag pathmnist --spatial_size 64"
    with pytest.raises(ValueError, match="no 100-pixel file; sizes: \\[28, 64, 128, 224\\]"):
        get_dataset("medmnist", flag="pathmnist", size=100)


def _gz_idx(path: Path, array: np.ndarray) -> bytes:
    """``array`` as a gzipped IDX file (written by medkit's IDX writer, then gzipped as Zalando ships them)."""
    from medkit.data.fashion import write_idx

    return gzip.compress(write_idx(path, array.astype(np.uint8)).read_bytes())


def test_fashion_mnist_keeps_gz_and_writes_idx(tmp_path: Path, server: FileServer) -> None:
    from medkit.data.fashion import read_fashion_split

    rng = np.random.default_rng(0)
    arrays = {
        "train": (rng.integers(0, 256, (5, 28, 28)), np.array([0, 1, 2, 3, 9])),
        "t10k": (rng.integers(0, 256, (3, 28, 28)), np.array([4, 5, 6])),
    }
    for prefix, (images, labels) in arrays.items():
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            _serve(server, {f"{name}.gz": _gz_idx(tmp_path / name, array)})
    spec = _pinned(DATASETS["fashion_mnist"], server)
    dest = fetch_dataset(spec, tmp_path / "data", base_url=server.base_url)
    raw = dest / "FashionMNIST" / "raw"
    assert dest == tmp_path / "data" / "fashion_mnist"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        [
            f"{p}-{k}" + ext
            for p in ("train", "t10k")
            for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
            for ext in ("", ".gz")
        ]
    )
    for train, prefix in ((True, "train"), (False, "t10k")):
        images, labels = read_fashion_split(dest, train=train)
        np.testing.assert_array_equal(images, arrays[prefix][0])
        np.testing.assert_array_equal(labels, arrays[prefix][1])

    fetch_dataset(spec, tmp_path / "data", base_url=server.base_url)  # a second run checks the .gz files and skips
    assert len(server.requests) == 4


def test_pcam_resumes_unzips_and_reads(tmp_path: Path, server: FileServer) -> None:
    pytest.importorskip("h5py")
    from pcam_files import write_pcam_h5

    from medkit.data.pcam_h5 import read_pcam_h5

    arrays = write_pcam_h5(tmp_path / "h5")
    for path in (tmp_path / "h5").iterdir():
        (server.root / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    spec = _pinned(DATASETS["pcam"], server)
    big = "camelyonpatch_level_2_split_train_x.h5.gz"
    server.cut[big] = (server.root / big).stat().st_size // 3
    with pytest.raises(RuntimeError, match=f"could not download {server.url(big)} .*run again to resume"):
        fetch_dataset(spec, tmp_path / "data", base_url=server.base_url)

    dest = fetch_dataset(spec, tmp_path / "data", base_url=server.base_url)
    assert f"bytes={(server.root / big).stat().st_size // 3}-" in server.ranges
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in (tmp_path / "h5").iterdir())  # no .gz
    parts = read_pcam_h5(dest)
    assert [item["label"] for item in parts["val"]] == arrays["valid"][1].tolist()
    requests = len(server.requests)
    assert fetch_dataset(spec, tmp_path / "data", base_url=server.base_url) == dest
    assert len(server.requests) == requests


def _chase_zip(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            image = Image.new("RGB" if name.endswith(".jpg") else "1", (12, 10), "white")
            data = io.BytesIO()
            image.save(data, format="JPEG" if name.endswith(".jpg") else "PNG")
            zf.writestr(name, data.getvalue())
    return buf.getvalue()


def test_chase_db1_needs_a_digest_and_refuses_dotdot(tmp_path: Path, server: FileServer) -> None:
    from medkit.data.retina import read_retina_split

    names = [
        f"Image_0{i}{eye}{suffix}" for i in (1, 2) for eye in "LR" for suffix in (".jpg", "_1stHO.png", "_2ndHO.png")
    ]
    _serve(server, {"CHASEDB1.zip": _chase_zip(names)})
    digest = _sha256((server.root / "CHASEDB1.zip").read_bytes())
    data = tmp_path / "data"
    with pytest.raises(ValueError, match=f"no published checksum for chase_db1; CHASEDB1.zip has sha256 {digest}"):
        fetch_dataset("chase_db1", data, base_url=server.base_url)
    dest = fetch_dataset("chase_db1", data, base_url=server.base_url, sha256=digest)
    assert dest == data / "chase_db1" / "CHASEDB1" and len(server.requests) == 1
    items = read_retina_split(dest, "chase_db1")
    assert [item["id"] for item in items] == ["Image_01L", "Image_01R", "Image_02L", "Image_02R"]
    assert Path(items[0]["label"]).name == "Image_01L_1stHO.png"

    _serve(server, {"CHASEDB1.zip": _chase_zip(["Image_01L.jpg", "../../Image_01L_1stHO.png"])})
    digest = _sha256((server.root / "CHASEDB1.zip").read_bytes())
    with pytest.raises(ValueError, match="unsafe member '../../Image_01L_1stHO.png'"):
        fetch_dataset("chase_db1", tmp_path / "other", base_url=server.base_url, sha256=digest)
    assert not (tmp_path / "other" / "chase_db1" / "CHASEDB1").exists()
    assert not list(tmp_path.glob("*.png")) and not list((tmp_path / "other").glob("*.png"))


def test_drive_is_manual_until_laid_out(tmp_path: Path) -> None:
    from medkit.data.synthetic_retina import generate_retina_dataset

    dest = tmp_path / "data" / "drive"
    with pytest.raises(ManualDownloadRequired, match="drive must be downloaded by hand") as info:
        fetch_dataset("drive", tmp_path / "data")
    assert "https://drive.grand-challenge.org/" in info.value.instructions
    assert f"{dest}/training/1st_manual/21_manual1.gif" in info.value.instructions
    (dest / "training").mkdir(parents=True)
    with pytest.raises(ManualDownloadRequired, match="does not hold drive in the expected layout"):
        fetch_dataset("drive", tmp_path / "data")
    generate_retina_dataset(dest, num_train=2, num_test=1, image_size=48)
    assert fetch_dataset("drive", tmp_path / "data") == dest


def _encode_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {}
    for split, n in FASTA_SPLITS.items():
        seqs = ["".join(rng.choice(list("ACGT"), 101)) for _ in range(n)]
        headers = [f"chr1:{1000 * i}-{1000 * i + 101}" + ("_shuf" if i % 2 else "") for i in range(n)]
        headers = [f"{split}_{h}" for h in headers]
        files[f"{split}.fa"] = "".join(f">{h}\n{s}\n" for h, s in zip(headers, seqs)).encode()
        files[f"{split}.target"] = "".join("0\t1\n" if i % 2 else "1\t0\n" for i in range(n)).encode()
    return files


def test_encode_chipseq_lists_every_digest(tmp_path: Path, server: FileServer) -> None:
    from medkit.data.dna import read_dna_dataset

    files = _encode_files()
    _serve(server, files)
    with pytest.raises(ValueError) as info:
        fetch_dataset("encode_chipseq", tmp_path / "data", base_url=server.base_url)
    message = str(info.value)
    assert "\n" not in message and message.startswith("no published checksum for encode_chipseq; train.fa has sha256")
    for name, data in files.items():
        assert f"--sha256 {name}={_sha256(data)}" in message
    assert not (tmp_path / "data" / "encode_chipseq" / "train.fa").exists()  # checked digests are named, not saved

    digests = {name: _sha256(data) for name, data in files.items()}
    wrong = {**digests, "valid.fa": "0" * 64}
    with pytest.raises(ValueError, match="sha256 mismatch for .*valid.fa: expected 0{64}"):
        fetch_dataset("encode_chipseq", tmp_path / "data", base_url=server.base_url, sha256=wrong)
    dest = fetch_dataset("encode_chipseq", tmp_path / "data", base_url=server.base_url, sha256=digests)
    items = read_dna_dataset(dest)
    assert len(items) == sum(FASTA_SPLITS.values())
    assert [item["label"] for item in items if item["source"] == "train"] == [1, 0, 1, 0]


def test_cli_prints_the_dataset_dir_last(
    tmp_path: Path, server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _encode_files()
    _serve(server, files)
    out = tmp_path / "data"
    digests = [f"{name}={_sha256(data)}" for name, data in files.items()]
    argv = ["data", "fetch", "encode_chipseq", "--out", str(out), "--base-url", server.base_url]
    assert medkit_main(argv + [arg for d in digests for arg in ("--sha256", d)]) == 0
    lines = capsys.readouterr().out.splitlines()
    dest = out / "encode_chipseq"
    command = "python -m monai.bundle run --config_file bundles/dna_binding/configs/train.json"
    assert lines == [f"train with: {command} --dataset_dir {dest}", f"--dataset_dir {dest}"]

    assert medkit_main(["data", "fetch", "drive", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "https://drive.grand-challenge.org/" in captured.out
    assert captured.err.strip() == f"error: drive must be downloaded by hand into {out / 'drive'}"

    base = dead_url("x").rsplit("/", 1)[0]
    assert medkit_main(["data", "fetch", "pcam", "--out", str(out), "--base-url", base]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: could not download {base}/camelyonpatch_level_2_split_train_x")
    assert (
        "Download it manually from https://zenodo.org/records/2546921" in err and f"--dataset_dir {out / 'pcam'}" in err
    )
