"""Tests for medkit.data.fetch / medkit.data.download and scripts/fetch_dsb2018.py against a local HTTP server (no
internet); the per-dataset fetchers are in test_fetch_datasets.py."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fetch_server import FileServer, dead_url
from PIL import Image

from medkit.data.fetch import DATASETS, RemoteDataset, RemoteFile, download_file, extract_archive, fetch_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "fetch_dsb2018.py"
IDS = ("0a1b2c", "ff00ee")


def _png_bytes(value: int, shape: tuple[int, ...] = (6, 5)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full(shape, value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep requests to 127.0.0.1 away from any proxy configured in the environment."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "srv"
    root.mkdir()
    srv = FileServer(root)
    yield srv
    srv.close()


@pytest.fixture
def dsb_zip(server: FileServer) -> tuple[str, str]:
    """A tiny stage1_train.zip in the DSB layout (``<id>/images/<id>.png``, ``<id>/masks/*.png``); (url, sha256)."""
    path = server.root / "stage1_train.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i, sample_id in enumerate(IDS):
            zf.writestr(f"{sample_id}/images/{sample_id}.png", _png_bytes(40 * i + 10, (6, 5, 4)))
            for m in range(2):
                zf.writestr(f"{sample_id}/masks/mask{m}.png", _png_bytes(255))
    return server.url("stage1_train.zip"), _sha256(path)


def test_registry_dsb2018() -> None:
    spec = DATASETS["dsb2018"]
    (file,) = spec.files
    assert file.url == "https://data.broadinstitute.org/bbbc/BBBC038/stage1_train.zip"
    assert file.extract_to == spec.dataset_dir == "dsb2018/stage1_train"
    assert file.sha256 is None and file.md5 is None
    assert "kaggle" in spec.manual_hint


def test_unknown_dataset_lists_known_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'nope'.*dsb2018"):
        fetch_dataset("nope", data_root=tmp_path)


def test_fetch_extracts_dsb_layout(tmp_path: Path, server: FileServer, dsb_zip: tuple[str, str]) -> None:
    url, digest = dsb_zip
    out = fetch_dataset("dsb2018", data_root=tmp_path / "data", url=url, sha256=digest)
    assert out == tmp_path / "data" / "dsb2018" / "stage1_train"
    assert sorted(p.name for p in out.iterdir()) == sorted(IDS)
    for sample_id in IDS:
        image = np.asarray(Image.open(out / sample_id / "images" / f"{sample_id}.png"))
        assert image.shape == (6, 5, 4)
        assert len(list((out / sample_id / "masks").glob("*.png"))) == 2
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert server.requests == ["/stage1_train.zip"]


def test_checksum_mismatch_raises_and_leaves_no_file(
    tmp_path: Path, dsb_zip: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, digest = dsb_zip
    dest = tmp_path / "dl" / "stage1_train.zip"
    with pytest.raises(ValueError, match=f"stage1_train.zip: expected {'0' * 64}, downloaded {digest};"):
        download_file(url, dest, expected_sha256="0" * 64)
    assert list(dest.parent.iterdir()) == []  # neither the file nor its .part

    with pytest.raises(ValueError, match="sha256 mismatch"):
        fetch_dataset("dsb2018", data_root=tmp_path / "data", url=url, sha256="f" * 64)
    assert list((tmp_path / "data" / "dsb2018").iterdir()) == []


def test_md5_verification(tmp_path: Path, server: FileServer, dsb_zip: tuple[str, str]) -> None:
    url, _ = dsb_zip
    md5 = hashlib.md5((server.root / "stage1_train.zip").read_bytes()).hexdigest()
    assert download_file(url, tmp_path / "a.zip", expected_md5=md5).is_file()
    with pytest.raises(ValueError, match="md5 mismatch"):
        download_file(url, tmp_path / "b.zip", expected_md5="1" * 32)


def test_no_redownload_when_present(tmp_path: Path, server: FileServer, dsb_zip: tuple[str, str]) -> None:
    url, digest = dsb_zip
    dest = tmp_path / "dl" / "stage1_train.zip"
    download_file(url, dest, expected_sha256=digest)
    download_file(url, dest, expected_sha256=digest)
    assert len(server.requests) == 1

    dest.write_bytes(b"corrupt")  # a wrong file is replaced
    download_file(url, dest, expected_sha256=digest)
    assert len(server.requests) == 2 and _sha256(dest) == digest

    for _ in range(2):
        fetch_dataset("dsb2018", data_root=tmp_path / "data", url=url, sha256=digest)
    assert len(server.requests) == 3


def test_unverified_dataset_needs_sha256_or_no_verify(
    tmp_path: Path, server: FileServer, dsb_zip: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, digest = dsb_zip
    data = tmp_path / "data"
    with pytest.raises(ValueError, match=f"no published checksum for dsb2018.*{digest}.*--no-verify"):
        fetch_dataset("dsb2018", data_root=data, url=url)
    assert not (data / "dsb2018" / "stage1_train").exists()

    # the kept archive is reused once the user supplies the digest they checked
    out = fetch_dataset("dsb2018", data_root=data, url=url, sha256=digest)
    assert sorted(p.name for p in out.iterdir()) == sorted(IDS)
    assert len(server.requests) == 1

    with caplog.at_level(logging.WARNING, logger="medkit.data.fetch"):
        out = fetch_dataset("dsb2018", data_root=tmp_path / "other", url=url, verify=False)
    assert (out / IDS[0] / "images" / f"{IDS[0]}.png").is_file()
    assert "verification disabled" in caplog.text and digest in caplog.text


@pytest.mark.parametrize("url_kind", ["refused", "http_404"], ids=["refused", "http-404"])
def test_network_failure_is_one_line_runtime_error(tmp_path: Path, server: FileServer, url_kind: str) -> None:
    url = dead_url("stage1_train.zip") if url_kind == "refused" else server.url("missing.zip")
    dest = tmp_path / "data" / "dsb2018" / "stage1_train"
    with pytest.raises(RuntimeError) as info:
        fetch_dataset("dsb2018", data_root=tmp_path / "data", url=url, verify=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"could not download {url} (")
    assert "kaggle.com/c/data-science-bowl-2018" in message and f"--dataset_dir {dest}" in message
    assert not any(p.is_file() for p in (tmp_path / "data").rglob("*"))


def _write_archive(path: Path, names: list[str]) -> Path:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name in names:
                zf.writestr(zipfile.ZipInfo(name), b"x")
    else:
        with tarfile.open(path, "w:gz") as tf:
            for name in names:
                info = tarfile.TarInfo(name)
                info.size = 1
                tf.addfile(info, io.BytesIO(b"x"))
    return path


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"], ids=["zip", "tar.gz"])
@pytest.mark.parametrize(
    "bad",
    ["../evil.txt", "ok/../../evil.txt", "/abs/evil.txt", "C:\\evil.txt"],
    ids=["dotdot", "nested", "abs", "drive"],
)
def test_extract_rejects_path_traversal(tmp_path: Path, suffix: str, bad: str) -> None:
    archive = _write_archive(tmp_path / f"bad{suffix}", ["good/a.txt", bad])
    dest = tmp_path / "out" / "inner"
    with pytest.raises(ValueError, match="unsafe member") as info:
        extract_archive(archive, dest)
    assert repr(bad) in str(info.value)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()


def test_extract_tar_gz(tmp_path: Path) -> None:
    archive = _write_archive(tmp_path / "ok.tar.gz", ["a/b.txt", "c.txt"])
    out = extract_archive(archive, tmp_path / "out")
    assert (out / "a" / "b.txt").read_bytes() == b"x" and (out / "c.txt").is_file()


def test_fetch_rejects_traversal_zip(tmp_path: Path, server: FileServer) -> None:
    archive = _write_archive(server.root / "evil.zip", ["id/images/id.png", "../../escape.png"])
    file = RemoteFile(
        server.url("evil.zip"), "evil/evil.zip", _sha256(archive), unpack="extract", extract_to="evil/train"
    )
    spec = RemoteDataset("evil", (file,), "evil/train", "nowhere")
    with pytest.raises(ValueError, match="'../../escape.png'"):
        fetch_dataset(spec, data_root=tmp_path / "data")
    assert not (tmp_path / "data" / "evil" / "train").exists()
    assert not (tmp_path / "escape.png").exists()


def _load_script():
    spec = importlib.util.spec_from_file_location("fetch_dsb2018", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_main_end_to_end(tmp_path: Path, dsb_zip: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    url, digest = dsb_zip
    data = tmp_path / "data"
    rc = _load_script().main(["--data-root", str(data), "--url", url, "--sha256", digest])
    out = capsys.readouterr().out
    expected = data / "dsb2018" / "stage1_train"
    assert rc == 0
    assert str(expected) in out
    assert f"--config_file bundles/nuclei_seg/configs/train.json --dataset_dir {expected}" in out
    assert (expected / IDS[1] / "masks" / "mask0.png").is_file()


def test_script_main_reports_checksum_error(
    tmp_path: Path, dsb_zip: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = dsb_zip
    rc = _load_script().main(["--data-root", str(tmp_path), "--url", url])
    err = capsys.readouterr().err
    assert rc == 1 and "error: no published checksum for dsb2018" in err and "Traceback" not in err


def test_script_subprocess_unreachable_url(tmp_path: Path) -> None:
    url = dead_url("stage1_train.zip")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--data-root", str(tmp_path / "data"), "--url", url, "--no-verify"],
        cwd=REPO_ROOT,
        env=dict(os.environ),  # proxy variables already cleared by the autouse fixture
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and error_lines[0].startswith(f"error: could not download {url} (")
    assert proc.stdout == ""


def test_sha256_and_md5_both_checked(tmp_path: Path, server: FileServer, dsb_zip: tuple[str, str]) -> None:
    url, digest = dsb_zip
    md5 = hashlib.md5((server.root / "stage1_train.zip").read_bytes()).hexdigest()
    dl = tmp_path / "dl"
    assert download_file(url, dl / "ok.zip", expected_sha256=digest.upper(), expected_md5=md5).is_file()
    with pytest.raises(ValueError, match=f"md5 mismatch for .*bad.zip: expected {'1' * 32}"):
        download_file(url, dl / "bad.zip", expected_sha256=digest, expected_md5="1" * 32)
    assert sorted(p.name for p in dl.iterdir()) == ["ok.zip"]


def test_monai_logs_go_through_logging_not_stdout(
    tmp_path: Path, dsb_zip: tuple[str, str], capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    """MONAI's ``monai.apps`` logger prints to stdout; medkit routes it through logging while it downloads."""
    url, digest = dsb_zip
    with caplog.at_level(logging.INFO):
        download_file(url, tmp_path / "a.zip", expected_sha256=digest)
        extract_archive(tmp_path / "a.zip", tmp_path / "out")
    assert capfd.readouterr().out == ""
    assert any(record.name == "monai.apps" for record in caplog.records)


def test_extract_tgz_by_content_and_refuses_links_and_full_folders(tmp_path: Path) -> None:
    archive = _write_archive(tmp_path / "ok.tar.gz", ["a/b.txt"]).rename(tmp_path / "ok.tgz")
    out = extract_archive(archive, tmp_path / "out")
    assert (out / "a" / "b.txt").is_file()
    with pytest.raises(ValueError, match="not empty"):
        extract_archive(archive, out)

    linked = tmp_path / "link.tar"
    with tarfile.open(linked, "w") as tf:
        info = tarfile.TarInfo("inside")
        info.type, info.linkname = tarfile.SYMTYPE, "a.txt"
        tf.addfile(info)
    with pytest.raises(ValueError, match="'inside'.*links are not allowed"):
        extract_archive(linked, tmp_path / "out2")
    assert list((tmp_path / "out2").iterdir()) == []

    (tmp_path / "plain.txt").write_text("not an archive")
    with pytest.raises(ValueError, match="unsupported archive format: .*plain.txt"):
        extract_archive(tmp_path / "plain.txt", tmp_path / "out3")


def test_truncated_download_resumes_with_range(tmp_path: Path, server: FileServer) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes
    (server.root / "blob.bin").write_bytes(data)
    dest = tmp_path / "dl" / "blob.bin"
    digest = hashlib.sha256(data).hexdigest()
    server.cut["blob.bin"] = 3000
    with pytest.raises(RuntimeError) as info:
        download_file(server.url("blob.bin"), dest, expected_sha256=digest)
    assert str(info.value).startswith(f"could not download {server.url('blob.bin')} (")
    assert "closed at byte 3000 of 10240; run again to resume" in str(info.value)
    part = dest.with_name(".blob.bin.part")
    assert part.read_bytes() == data[:3000] and not dest.exists()

    assert download_file(server.url("blob.bin"), dest, expected_sha256=digest).read_bytes() == data
    assert server.ranges == [None, "bytes=3000-"]
    assert not part.exists()


def test_resume_without_range_support_and_stale_part(tmp_path: Path, server: FileServer) -> None:
    data = b"0123456789" * 100
    (server.root / "blob.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "blob.bin"
    part = tmp_path / ".blob.bin.part"

    server.ranges_supported = False  # the server answers 200 with the whole file: the part is rewritten
    part.write_bytes(b"junk")
    assert download_file(server.url("blob.bin"), dest, expected_sha256=digest).read_bytes() == data
    dest.unlink()

    server.ranges_supported = True  # a part from another file: the resumed file mismatches, then a fresh download
    part.write_bytes(b"XXXXXXXXXX" * 30)
    assert download_file(server.url("blob.bin"), dest, expected_sha256=digest).read_bytes() == data
    assert server.ranges[-2:] == ["bytes=300-", None]

    dest.unlink()  # a complete part: the server answers 416 and the part is checked as it is
    part.write_bytes(data)
    assert download_file(server.url("blob.bin"), dest, expected_sha256=digest).read_bytes() == data
    assert server.ranges[-1] == f"bytes={len(data)}-"
