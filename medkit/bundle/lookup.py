"""Where a bundle is: one lookup for ``medkit explain``, ``medkit sweep`` and the benchmarks.

A bundle is given as a folder holding ``configs/`` or as a name, looked up under ``./bundles`` (the folder commands
run from) and then under the ``bundles/`` folder next to the medkit package (the repository's own bundles).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["REPO_BUNDLES", "find_bundle"]

REPO_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


def _bundle_names(roots: Sequence[Path]) -> list[str]:
    return sorted({p.parent.name for root in roots if root.is_dir() for p in root.glob("*/configs") if p.is_dir()})


def find_bundle(bundle: str | os.PathLike, roots: Sequence[str | os.PathLike] | None = None) -> Path:
    """The folder of ``bundle``, as found (a relative path stays relative).

    Args:
        bundle: a folder holding ``configs/``, or a bundle name such as ``nuclei_seg``.
        roots: the folders a name is looked up in, in order; default ``./bundles``, then the repository's
            ``bundles/`` (:data:`REPO_BUNDLES`).

    Returns:
        the bundle folder; its ``configs/`` folder exists.

    Raises:
        FileNotFoundError: naming the bundle, the folders searched and the bundle names they hold.
    """
    path = Path(bundle)
    if (path / "configs").is_dir():
        return path
    search = [Path(root) for root in roots] if roots is not None else [Path("bundles"), REPO_BUNDLES]
    for root in search:
        if (root / str(bundle) / "configs").is_dir():
            return root / str(bundle)
    names = _bundle_names(search)
    raise FileNotFoundError(
        f"no bundle {str(bundle)!r}: it is not a folder holding configs/ and no bundle of that name is in "
        f"{', '.join(map(str, search))}; available bundles: {', '.join(names) or 'none'}"
    )
