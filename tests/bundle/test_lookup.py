"""medkit.bundle.lookup.find_bundle: folder, then ./bundles, then the repository's bundles/; errors list the names."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO_ROOT

from medkit.bundle.lookup import REPO_BUNDLES, find_bundle


def _bundle(root: Path, name: str) -> Path:
    (root / name / "configs").mkdir(parents=True)
    return root / name


def test_repo_bundles_is_the_repository_folder():
    assert REPO_BUNDLES == REPO_ROOT / "bundles"
    assert find_bundle("nuclei_seg", roots=[REPO_BUNDLES]) == REPO_BUNDLES / "nuclei_seg"


@pytest.mark.parametrize(
    "given, expected",
    [
        ("mine/alpha", Path("mine/alpha")),  # a folder holding configs/
        ("alpha", Path("bundles/alpha")),  # a name under ./bundles, returned as found (relative)
        ("nuclei_seg", REPO_BUNDLES / "nuclei_seg"),  # a name under the repository's bundles/
    ],
    ids=["folder", "cwd-bundles", "repo-bundles"],
)
def test_lookup_order(tmp_path, monkeypatch, given, expected):
    monkeypatch.chdir(tmp_path)
    _bundle(tmp_path / "mine", "alpha")
    _bundle(tmp_path / "bundles", "alpha")
    assert find_bundle(given) == expected
    assert (find_bundle(given) / "configs").is_dir()


def test_cwd_bundles_win_over_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _bundle(tmp_path / "bundles", "nuclei_seg")
    assert find_bundle("nuclei_seg") == Path("bundles/nuclei_seg")
    assert find_bundle(Path("bundles/nuclei_seg")) == Path("bundles/nuclei_seg")


def test_folder_without_configs_is_not_a_bundle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bundles" / "half").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no bundle 'half'"):
        find_bundle("half")


def test_error_names_the_bundle_the_places_and_the_available_names(tmp_path):
    _bundle(tmp_path / "a", "beta")
    _bundle(tmp_path / "b", "alpha")
    _bundle(tmp_path / "b", "beta")
    with pytest.raises(FileNotFoundError) as err:
        find_bundle("nucle_seg", roots=[tmp_path / "a", tmp_path / "b", tmp_path / "missing"])
    message = str(err.value)
    assert "no bundle 'nucle_seg'" in message and str(tmp_path / "missing") in message
    assert message.endswith("available bundles: alpha, beta")


def test_error_with_no_bundles_anywhere(tmp_path):
    with pytest.raises(FileNotFoundError, match="available bundles: none"):
        find_bundle("x", roots=[tmp_path])
