"""Download the 2018 Data Science Bowl nuclei training set (BBBC038 ``stage1_train.zip``) into ``data/``.

Same as ``medkit data fetch dsb2018``. No checksum is published for this archive, so pass one you trust or opt out
explicitly (the sha256 of what was downloaded is logged either way). Usage (from the repo root)::

    python scripts/fetch_dsb2018.py --sha256 <digest you trust>
    python scripts/fetch_dsb2018.py --no-verify
"""

from __future__ import annotations

import sys

from medkit.cli import main as medkit_main


def main(argv: list[str] | None = None) -> int:
    """Fetches DSB2018 and prints where it landed and the bundle command to train on it; 1 on error."""
    return medkit_main(["data", "fetch", "dsb2018", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
