"""Checkpoint helpers for resuming training runs."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

__all__ = ["find_resume_checkpoint"]

logger = logging.getLogger(__name__)

_EPOCH = re.compile(r"checkpoint_epoch=(\d+)\.pt$")


def find_resume_checkpoint(output_dir: str | os.PathLike, final_name: str = "model_final.pt") -> str:
    """Returns the newest full training checkpoint in ``output_dir`` to resume from.

    The per-epoch checkpoint (``checkpoint_epoch=N.pt``) of the highest epoch wins over ``final_name`` when it is newer,
    which covers runs that were interrupted after an earlier completed run.

    Raises:
        FileNotFoundError: if ``output_dir`` holds no training checkpoint; the message names the folder.
    """
    folder = Path(output_dir)
    candidates = [p for p in folder.glob("checkpoint_epoch=*.pt") if _EPOCH.search(p.name)]
    if (folder / final_name).is_file():
        candidates.append(folder / final_name)
    if not candidates:
        raise FileNotFoundError(
            f"resume requested but {folder} holds no {final_name} or checkpoint_epoch=N.pt; "
            "train once without --resume first, or point --output_dir at an earlier run"
        )
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    logger.info("resuming from %s", newest)
    return str(newest)
