"""Inference on a folder that may hold bad files: every good input is predicted, the others are listed.

A bundle's ``inference.json`` wires three pieces:

- :class:`InferenceDataLoader` in place of MONAI's ``DataLoader``. It leaves out the inputs whose outputs already
  exist, unless ``overwrite`` (it asks the bundle's writers: ``SaveLikeInputd``, ``AtomicSaveImaged``,
  ``SaveGreyLabeld``, ``PredictionCSVWriter``), so a rerun after an interruption does only what is left. An input
  that fails to load or transform is recorded with the reason and left out of its batch; the run goes on.
- :func:`read_each`, for readers that parse files while listing them (DNA sequence files, image folders read into
  arrays): each file is read on its own, and one that cannot be read becomes a failure instead of ending the run.
- :func:`run_inference` in ``run``: it runs the evaluator, writes ``failures.json`` into the output folder (a list of
  ``{"file", "reason"}``, empty when all went well) and, when anything failed, ends with one line naming the count
  and that file (exit status 1).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events
from monai.data import DataLoader
from monai.data.utils import list_data_collate
from monai.transforms import Compose
from torch.utils.data import Dataset as TorchDataset

from medkit.bundle.errors import UserError, failed_writes_as_user_errors, root_cause
from medkit.utils import as_bool, save_json

__all__ = ["FAILURES_FILENAME", "InferenceDataLoader", "failed_item", "read_each", "run_inference"]

logger = logging.getLogger(__name__)

FAILURES_FILENAME = "failures.json"
_FAILURE = "_medkit_failure"  # the key of an item that stands for a failed input: {"file", "reason"}


def failed_item(file: str | os.PathLike, reason: str) -> dict[str, dict[str, str]]:
    """A datalist item for an input that could not be read; :class:`InferenceDataLoader` reports it as failed."""
    return {_FAILURE: {"file": str(file), "reason": reason}}


def _is_failure(item: Any) -> bool:
    return isinstance(item, Mapping) and _FAILURE in item


_TRACEBACK = "Traceback (most recent call last):"


def _error_lines(traceback: str) -> list[str]:
    chained = ("The above exception", "During handling of the above exception")
    return [line.strip() for line in traceback.splitlines() if line.strip() and not line.startswith(chained)]


def _reason(error: BaseException) -> str:
    """Why an input failed, on one line: the type and message of the root cause of ``error``.

    MONAI's "cannot find a suitable reader" error carries the traceback of every reader it tried; it is cut to its
    first line plus the error line of each reader (``PIL.UnidentifiedImageError: cannot identify image file ...``).
    """
    cause = root_cause(error)
    kind = type(cause)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    text = str(cause)
    if _TRACEBACK in text:
        first, *tracebacks = text.split(_TRACEBACK)
        errors = dict.fromkeys(lines[-1] for t in tracebacks if (lines := _error_lines(t)))
        text = f"{first.strip().splitlines()[0]} ({'; '.join(errors)})"
    return f"{name}: {' '.join(text.split())}"


def _failure(item: Any, error: BaseException) -> dict[str, dict[str, str]]:
    """The failed item for ``item``, which raised ``error``: its file (image path, else source), id and reason."""
    item = item if isinstance(item, Mapping) else {}
    file = next((str(item[k]) for k in ("image", "source") if isinstance(item.get(k), (str, os.PathLike))), "?")
    failed = failed_item(file, _reason(error))
    if "id" in item and str(item["id"]) != file:
        failed[_FAILURE]["id"] = str(item["id"])
    return failed


def read_each(read: Callable[[Path], list], path: str | os.PathLike, *extensions: Sequence[str]) -> list:
    """Reads the input files in the folder ``path`` one at a time; a file ``read`` fails on becomes a failed item.

    In the folder (not its subfolders) the files of the first group of ``extensions`` that any file has are read, in
    name order: ``read_each(read, d, (".csv", ".tsv"), (".fa", ".fasta"))`` reads FASTA files only when there is
    no table, as the DNA reader does. A file, or a folder without such files, goes to ``read`` whole, so its own
    errors (a missing folder, a FashionMNIST root) stay as they are.

    Args:
        read: reads one file (or ``path`` itself) into datalist items.
        path: the input folder or file.
        extensions: groups of lower-case file extensions, most preferred first.

    Returns:
        The items of every file read, then a failed item (:func:`failed_item`) for each file that could not be.
    """
    root = Path(path)
    files: list[Path] = []
    if root.is_dir():
        for group in extensions:
            files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in group)
            if files:
                break
    if not files:
        return read(root)
    items, failed = [], []
    for file in files:
        try:
            items.extend(read(file))
        except Exception as error:  # any reader error: the file is reported, the others are predicted
            failed.append(_failure({"source": str(file)}, error))
    return items + failed


class _SkipFailures(TorchDataset):
    """The items ``indices`` of ``dataset``; an item that raises while loading or transforming becomes a failed item."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        index = self.indices[i]
        raw = self.dataset.data[index] if hasattr(self.dataset, "data") else None
        if _is_failure(raw):
            return raw
        try:
            return self.dataset[index]
        except Exception as error:  # a bad input file: MONAI wraps the reader's error in its transform error
            return _failure(raw, error)


class _CollateGood:
    """Collates the good items of a batch (``None`` if there is none) and returns them with the failures."""

    def __init__(self, collate_fn: Callable) -> None:
        self.collate_fn = collate_fn

    def __call__(self, items: list) -> tuple[Any, list[dict[str, str]]]:
        good = [item for item in items if not _is_failure(item)]
        failures = [item[_FAILURE] for item in items if _is_failure(item)]
        return (self.collate_fn(good) if good else None), failures


def _writers(writers: Any) -> list:
    """The objects among ``writers`` (a ``Compose``, a list of transforms or handlers) that name their outputs:
    ``finished(item)`` (row writers) or ``output_path(source)`` (file writers; a dict transform's ``saver``)."""
    if writers is None:
        return []
    items = writers.flatten().transforms if isinstance(writers, Compose) else writers
    found = []
    for writer in items if isinstance(items, (list, tuple)) else [items]:
        writer = writer if hasattr(writer, "finished") else getattr(writer, "saver", writer)
        if hasattr(writer, "finished") or hasattr(writer, "output_path"):
            found.append(writer)
    return found


def _finished(item: Any, writers: list, source_key: str) -> bool:
    if not writers or not isinstance(item, Mapping) or _is_failure(item):
        return False
    for writer in writers:
        if hasattr(writer, "finished"):
            done = writer.finished(item)
        else:
            try:
                done = source_key in item and Path(writer.output_path(item[source_key])).is_file()
            except ValueError:  # a source the writer cannot name an output for fails when it is written
                done = False
        if not done:
            return False
    return True


class InferenceDataLoader(DataLoader):
    """MONAI's ``DataLoader`` for inference on folders that may hold bad files.

    Inputs whose outputs all exist are left out (logged with their count) unless ``overwrite``: each of ``writers``
    that names its outputs is asked, through ``finished(item)`` (:class:`medkit.handlers.PredictionCSVWriter`) or
    ``output_path(item[source_key])`` (:class:`medkit.transforms.SaveLikeInput`,
    :class:`medkit.transforms.AtomicSaveImage`, :class:`medkit.transforms.SaveGreyLabel` and their dict versions).
    An input that raises while it is loaded or transformed, or that :func:`read_each` could not read, is logged and
    kept in :attr:`failures` (``{"file", "reason"}``, plus ``id`` for a record of a file); its batch goes on without it.

    Run the evaluator with :func:`run_inference`: a batch made only of failures is skipped, so the loader may end
    before ``len(loader)`` batches, and the evaluator's epoch must end there.

    Args:
        dataset: the inference dataset (a MONAI ``Dataset``, whose ``data`` holds the datalist items).
        writers: what writes the predictions: the postprocessing ``Compose`` or the handler list.
        overwrite: predict inputs whose outputs exist again (``true``/``false`` as on the command line).
        source_key: the datalist key of an input's file, for the file writers.
        kwargs: ``DataLoader`` arguments (``batch_size``, ``num_workers``, ``collate_fn``, ...).
    """

    def __init__(
        self,
        dataset: Any,
        writers: Any = None,
        overwrite: bool | str = False,
        source_key: str = "image",
        **kwargs: Any,
    ) -> None:
        data = getattr(dataset, "data", None)
        found = _writers(writers)
        indices = list(range(len(dataset)))
        if not as_bool(overwrite) and data is not None:
            if writers is not None and not found:
                logger.warning("no writer names its outputs, so finished inputs cannot be skipped")
            indices = [i for i in indices if not _finished(data[i], found, source_key)]
            if len(indices) < len(dataset):
                logger.info(
                    "%d of %d inputs already have their outputs: skipped (--overwrite true predicts them again)",
                    len(dataset) - len(indices),
                    len(dataset),
                )
        self.pending = len(indices)
        self.failures: list[dict[str, str]] = []
        collate_fn = _CollateGood(kwargs.pop("collate_fn", None) or list_data_collate)
        super().__init__(_SkipFailures(dataset, indices), collate_fn=collate_fn, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        self.failures = []
        for batch, failures in super().__iter__():
            for failure in failures:
                logger.warning("input %s failed: %s", failure["file"], failure["reason"])
            self.failures.extend(failures)
            if batch is not None:
                yield batch


def _end_epoch(engine: Engine) -> None:
    engine.terminate_epoch()


def run_inference(evaluator: Engine, output_dir: str | os.PathLike) -> Path:
    """Runs an inference evaluator over its :class:`InferenceDataLoader` and reports the inputs that failed.

    The evaluator's epoch ends when the loader runs out (it yields fewer batches than ``len(loader)`` when failures
    fill whole batches). ``<output_dir>/failures.json`` is then written: every failed input with its reason, ``[]``
    when none failed (a stale list from an earlier run is replaced).

    Args:
        evaluator: the bundle's evaluator, built on an :class:`InferenceDataLoader`.
        output_dir: the run's output folder.

    Returns:
        The path of ``failures.json``.

    Raises:
        TypeError: if the evaluator's loader is not an :class:`InferenceDataLoader`.
        UserError: when any input failed: how many, and where ``failures.json`` lists them; or when an output could
            not be written (disk full, read-only folder), naming the folder and the reason.
    """
    loader = getattr(evaluator, "data_loader", None)
    if not isinstance(loader, InferenceDataLoader):
        raise TypeError(f"run_inference needs an evaluator on a medkit.bundle.InferenceDataLoader, got {loader!r}")
    if len(loader) == 0:
        loader.failures = []
        logger.info("nothing left to predict into %s", output_dir)
    else:
        if not evaluator.has_event_handler(_end_epoch, Events.DATALOADER_STOP_ITERATION):
            evaluator.add_event_handler(Events.DATALOADER_STOP_ITERATION, _end_epoch)
        kept = (
            "the predictions written before are complete, and a rerun (after freeing space, or with another "
            "--output_dir) predicts only the rest"
        )
        with failed_writes_as_user_errors(output_dir, kept):
            evaluator.run()
    path = save_json(loader.failures, Path(output_dir) / FAILURES_FILENAME)
    if loader.failures:
        raise UserError(
            f"{len(loader.failures)} of {loader.pending} inputs failed and have no prediction; {path} lists them "
            "with the reasons (the other predictions are written)"
        )
    logger.info("all %d inputs predicted; %s is empty", loader.pending, path)
    return path
