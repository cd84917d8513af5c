"""Declared dependencies against what medkit imports, and bundle metadata versions against what is installed."""

from __future__ import annotations

import ast
import functools
import importlib
import json
import pkgutil
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import medkit

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO_ROOT = Path(__file__).resolve().parents[1]
METADATA_FILES = sorted(REPO_ROOT.glob("bundles/*/configs/metadata.json"))

# distributions whose import name is not their own name (the rest import as the name with "-" -> "_")
IMPORT_NAMES = {
    "pillow": {"PIL"},
    "scikit-image": {"skimage"},
    "scikit-learn": {"sklearn"},
    "pytorch-ignite": {"ignite"},
}


def _requirements(extras: bool = False) -> list[Requirement]:
    """The declared dependencies; with ``extras``, those of the optional extras too (their modules import them
    lazily and name the extra when it is missing)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    if extras:
        specs += [spec for group in project.get("optional-dependencies", {}).values() for spec in group]
    return [Requirement(spec) for spec in specs]


@functools.cache
def _declared_import_names() -> frozenset[str]:
    installed = packages_distributions()  # import name -> distributions, from the installed metadata
    declared = {canonicalize_name(req.name) for req in _requirements(extras=True)}
    names = set()
    for dist in declared:
        names |= IMPORT_NAMES.get(dist, {dist.replace("-", "_")})
        names |= {mod for mod, dists in installed.items() if dist in {canonicalize_name(d) for d in dists}}
    return frozenset(names)


def _medkit_modules() -> list[str]:
    return ["medkit"] + [m.name for m in pkgutil.walk_packages(medkit.__path__, prefix="medkit.")]


def third_party_imports(source: str) -> set[str]:
    """Top-level names of every absolute ``import x`` / ``from x import y`` in ``source``, at any depth."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"medkit"}


def test_the_import_parser_sees_function_level_and_from_imports():
    source = (
        "import os, numpy.linalg as la\nfrom . import x\ndef f():\n    from skimage import io\n    import PIL.Image\n"
    )
    assert third_party_imports(source) == {"numpy", "skimage", "PIL"}


@pytest.mark.parametrize("name", _medkit_modules())
def test_every_third_party_import_is_declared(name: str):
    module = importlib.import_module(name)
    source = Path(module.__file__).read_text(encoding="utf-8")
    undeclared = sorted(third_party_imports(source) - _declared_import_names())
    assert not undeclared, (
        f"{module.__file__} imports {undeclared}, not declared in pyproject.toml dependencies or extras"
    )


@pytest.mark.parametrize("req", _requirements(), ids=str)
def test_pyproject_requirements_admit_the_installed_versions(req: Requirement):
    installed = version(req.name)
    assert req.specifier.contains(installed, prereleases=True), f"pyproject.toml: {req} but {installed} is installed"


def _installed(dist: str) -> str:
    try:
        return Version(version(dist)).public  # "2.14.1+cu126" is recorded as "2.14.1"
    except PackageNotFoundError:
        return "not installed"


def _recorded_versions(meta: dict) -> dict[str, str]:
    recorded = {"monai": meta["monai_version"], "torch": meta["pytorch_version"], "numpy": meta["numpy_version"]}
    for key in ("required_packages_version", "optional_packages_version"):
        recorded.update(meta.get(key, {}))
    return recorded


@pytest.mark.parametrize("path", METADATA_FILES, ids=lambda p: p.parts[-3])
def test_metadata_versions_match_the_installed_packages(path: Path):
    recorded = _recorded_versions(json.loads(path.read_text()))
    wrong = {dist: (want, _installed(dist)) for dist, want in recorded.items() if want != _installed(dist)}
    assert not wrong, f"{path}: recorded vs installed versions differ: {wrong}"


def test_there_are_bundles_to_check():
    assert METADATA_FILES, f"no bundles/*/configs/metadata.json under {REPO_ROOT}"
