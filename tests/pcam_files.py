"""Tiny PatchCamelyon HDF5 files of the official shapes, written with h5py, for the reader and fetcher tests.

Each split gets ``camelyonpatch_level_2_split_<split>_x.h5`` (dataset ``x``: ``(N, 96, 96, 3)`` uint8) and ``_y.h5``
(dataset ``y``: ``(N, 1, 1, 1)`` uint8), as in the Zenodo files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

COUNTS = {"train": 6, "valid": 4, "test": 4}


def write_pcam_h5(
    root: Path, counts: dict[str, int] = COUNTS, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Writes the six files under ``root``; returns ``{split: (x, y)}`` with ``y`` of shape ``(N,)``.

    Labels alternate 0, 1, 0, ... and every patch is random noise, so each one is different.
    """
    import h5py

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in counts.items():
        x = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
        y = (np.arange(n) % 2).astype(np.uint8)
        stem = root / f"camelyonpatch_level_2_split_{split}"
        with h5py.File(f"{stem}_x.h5", "w") as f:
            f.create_dataset("x", data=x, chunks=(1, 96, 96, 3))
        with h5py.File(f"{stem}_y.h5", "w") as f:
            f.create_dataset("y", data=y.reshape(n, 1, 1, 1))
        arrays[split] = (x, y)
    return arrays
