"""One-line errors for bundle runs: medkit's own input errors end stderr as a single line, not a 60-line traceback.

MONAI wraps every exception raised while a config expression is evaluated in ``RuntimeError: Failed to evaluate
ConfigExpression``; the message a user needs (``dataset_dir /x does not exist ...``) is buried in the chain. The hook
installed by :func:`install_excepthook` walks the chain to its root cause and, when medkit raised it on purpose (a
:class:`UserError`, or a ``FileNotFoundError``/``ValueError``/``KeyError``/``TypeError`` raised from medkit code),
prints that message alone as the last line of stderr. ``MEDKIT_DEBUG=1`` keeps the full traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

__all__ = [
    "failed_writes_as_user_errors",
    "write_failure",
    "UserError",
    "install_excepthook",
    "one_line",
    "root_cause",
    "user_message",
]

_MEDKIT_DIR = str(Path(__file__).resolve().parents[1])
_USER_ERROR_TYPES = (FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError)
DEBUG_VARIABLE = "MEDKIT_DEBUG"


class UserError(ValueError):
    """A mistake in how a bundle was called (an unknown override, a bad switch value); its message says the fix."""


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of ``exc``'s ``__cause__``/``__context__`` chain (``raise ... from None`` ends it)."""
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


def _raised_in_medkit(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and str(Path(frames[-1].filename).resolve()).startswith(_MEDKIT_DIR)


def one_line(exc: BaseException) -> str:
    """``"<type>: <message>"`` of ``exc``'s root cause on one line (a ``KeyError``'s key without repr quotes)."""
    cause = root_cause(exc)
    text = cause.args[0] if isinstance(cause, KeyError) and cause.args else str(cause)
    return f"{type(cause).__name__}: {' '.join(str(text).split())}"


def user_message(exc: BaseException) -> str | None:
    """The one-line message for ``exc`` when its root cause is a medkit input error, else ``None``."""
    cause = root_cause(exc)
    if isinstance(cause, UserError) or (isinstance(cause, _USER_ERROR_TYPES) and _raised_in_medkit(cause)):
        return one_line(cause)
    return None


def install_excepthook() -> Callable:
    """Makes uncaught medkit input errors print one line (unless ``MEDKIT_DEBUG`` is set); returns the old hook."""
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        message = user_message(exc)
        if message is None or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            previous(exc_type, exc, tb)
            if message is None:
                return
        sys.stderr.write(f"medkit: {message} (set {DEBUG_VARIABLE}=1 for the traceback)\n")

    sys.excepthook = hook
    return previous


def write_failure(error: BaseException) -> str | None:
    """What went wrong when ``error`` (or an exception in its chain) is a failed write: disk full, quota, read-only
    file system, no permission; ``None`` for anything else."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            return f"{current.strerror} ({current.filename})" if current.filename else str(current.strerror)
        if isinstance(current, RuntimeError) and "file write failed" in str(current):  # torch.save on a full disk
            return "file write failed (disk full?)"
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def failed_writes_as_user_errors(folder: str | os.PathLike, kept: str) -> Iterator[None]:
    """Turns a failed write inside the block into one line: ``cannot write into <folder>: <reason>; <kept>``.

    Args:
        folder: the folder being written.
        kept: what is still there and what to do (``the checkpoints written before are kept (...)``).
    """
    try:
        yield
    except (OSError, RuntimeError) as error:
        reason = write_failure(error)
        if reason is None:
            raise
        raise UserError(f"cannot write into {folder}: {reason}; {kept}") from error
