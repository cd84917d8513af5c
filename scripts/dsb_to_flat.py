"""Convert a DSB2018 ``stage1_train`` folder to the flat layout nuclei_seg also reads: ``images/<id>.png`` and one
union mask ``masks/<id>.png`` per image (255 where any nucleus is). The flat copy of the 200-case set is about 20 MB,
small enough to carry to a GPU machine; nuclei_seg trains on it exactly as on the original (same images, same union
masks).

Example (from the repo root)::

    python scripts/dsb_to_flat.py $MEDKIT_REAL_DATA/dsb2018_nuclei .device/dsb_flat
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from medkit.data.nuclei import find_dsb_root, read_dsb_stage1

logger = logging.getLogger("dsb_to_flat")


def convert(dsb_dir: Path, out_dir: Path) -> int:
    """Writes the flat layout of ``dsb_dir`` into ``out_dir``; returns the number of cases."""
    items = read_dsb_stage1(find_dsb_root(dsb_dir) or dsb_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    for item in items:
        shutil.copyfile(item["image"], out_dir / "images" / f"{item['id']}.png")
        union = None
        for path in item["label"]:
            mask = np.asarray(Image.open(path))
            mask = (mask.max(axis=-1) if mask.ndim == 3 else mask) > 0
            union = mask if union is None else union | mask
        Image.fromarray(union.astype(np.uint8) * 255).save(out_dir / "masks" / f"{item['id']}.png")
    return len(items)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dsb_dir", type=Path, help="DSB2018 folder (stage1_train or its parent)")
    ap.add_argument("out_dir", type=Path, help="where images/ and masks/ are written")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n = convert(args.dsb_dir, args.out_dir)
    logger.info("%d cases written to %s", n, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
