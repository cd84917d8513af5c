"""Readers, checks, splits and batching for DNA sequence classification (binding site vs. background).

Formats (``dataset_dir`` may be one file or a folder of them):
    * CSV/TSV with a header: sequence and label columns (names configurable), an optional id column.
    * FASTA plus a label file of the same stem (``.target``, ``.labels``, ``.label`` or ``.txt``): one label per line,
      or the two-column one-hot ``.target`` format where ``1<TAB>0`` is bound (label 1) and ``0<TAB>1`` is not.
    * FASTA whose headers carry the label as their last field: ``>id label=1``, ``>id|1`` or ``>id 1``.

Every reader returns items ``{"id": str, "sequence": str, "label": int, "source": str}``; ``label`` is absent when
labels are not required and the file has none. Files are UTF-8 text (:func:`medkit.data.checks.text_lines`: bad
bytes, NUL bytes and lines over 16 MiB fail naming the file and line); sequences are upper-cased and must hold only
A, C, G, T, N; labels are 0 (unbound) or 1 (bound); ids are unique.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from medkit.data.checks import MAX_LINE_BYTES, check_file, check_unique_ids, inside, text_lines
from medkit.data.datalist import prepare_datalists, split_items

__all__ = [
    "FASTA_EXTENSIONS",
    "TABLE_EXTENSIONS",
    "check_dna_items",
    "pad_collate",
    "prepare_dna_datalists",
    "read_dna_dataset",
    "read_fasta",
    "read_label_file",
    "read_sequence_table",
]

logger = logging.getLogger(__name__)

TABLE_EXTENSIONS = (".csv", ".tsv")
FASTA_EXTENSIONS = (".fa", ".fasta", ".fna", ".fas")
LABEL_EXTENSIONS = (".target", ".labels", ".label", ".txt")
_VALID = re.compile(r"[^ACGTN]")
_HEADER_LABEL = re.compile(r"^(?P<id>.*?)(?:\s+label=|\s+|\|)(?P<label>-?\d+)\s*$")


def read_sequence_table(
    path: str | os.PathLike,
    sequence_column: str = "sequence",
    label_column: str = "label",
    id_column: str = "id",
    require_labels: bool = True,
) -> list[dict[str, Any]]:
    """Reads a CSV (``,``) or TSV (``\\t``, chosen by the ``.tsv`` extension) file with a header row.

    Args:
        path: the UTF-8 table.
        sequence_column: header of the sequence column.
        label_column: header of the label column.
        id_column: header of the optional id column; rows without one are named ``<stem>:<row>``.
        require_labels: whether a missing label column is an error.

    Raises:
        ValueError: naming the file (and line), if it is empty, not UTF-8 text, has a line over
            :data:`medkit.data.checks.MAX_LINE_BYTES` or a malformed row, a required column is missing (the message
            lists the header), a label is not an integer, or it holds no rows.
    """
    path = check_file(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    previous = csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))  # csv's default is 128 KiB a field
    line_num = 0

    def lines() -> Iterator[str]:
        nonlocal line_num
        for num, line in text_lines(path):
            line_num = num  # for the error message: csv's own line_num lags behind
            yield line

    reader = csv.DictReader(lines(), delimiter=delimiter)
    try:
        header = reader.fieldnames or []
        if sequence_column not in header:
            raise ValueError(f"{path}: no sequence column {sequence_column!r}; header is {header}")
        has_labels = label_column in header
        if require_labels and not has_labels:
            raise ValueError(f"{path}: no label column {label_column!r}; header is {header}")
        items = []
        for row_num, row in enumerate(reader, start=2):
            record = row.get(id_column) if id_column in header else None
            item = {"id": record or f"{path.stem}:{row_num}", "sequence": row[sequence_column] or ""}
            if has_labels:
                item["label"] = _parse_label(row[label_column], f"{path}:{row_num}")
            items.append(item)
    except csv.Error as exc:
        raise ValueError(f"{path}:{line_num}: malformed {delimiter!r}-separated row ({exc})") from None
    finally:
        csv.field_size_limit(previous)
    if not items:
        raise ValueError(f"{path}: no sequences (a header and no rows)")
    return items


def read_fasta(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Reads ``(header, sequence)`` pairs from a UTF-8 FASTA file; sequences may span several lines.

    Raises:
        ValueError: naming the file (and line), if it is empty, not UTF-8 text, has a line over
            :data:`medkit.data.checks.MAX_LINE_BYTES`, or sequence text comes before the first ``>`` header.
    """
    path = check_file(path)
    records: list[tuple[str, list[str]]] = []
    for line_num, line in text_lines(path):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            records.append((line[1:].strip(), []))
        elif not records:
            raise ValueError(f"{path}:{line_num}: sequence before the first '>' header")
        else:
            records[-1][1].append(line)
    return [(header, "".join(parts)) for header, parts in records]


def read_label_file(path: str | os.PathLike) -> list[int]:
    """Reads one label per line, or two-column one-hot rows (``1<TAB>0`` = bound = 1, ``0<TAB>1`` = 0).

    Raises:
        ValueError: for a row that is neither, naming the file and line; or, naming the file, if it is empty, not
            UTF-8 text or has a line over :data:`medkit.data.checks.MAX_LINE_BYTES`.
    """
    path = check_file(path)
    labels = []
    for line_num, line in text_lines(path):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        where = f"{path}:{line_num}"
        if len(fields) == 1:
            labels.append(_parse_label(fields[0], where))
        elif len(fields) == 2 and sorted(fields) == ["0", "1"]:
            labels.append(1 if fields[0] == "1" else 0)
        else:
            raise ValueError(f"{where}: expected one label or a one-hot pair '1<TAB>0'/'0<TAB>1', got {line.strip()!r}")
    return labels


def _parse_label(text: Any, where: str) -> int:
    """A DNA binding label: the integer 0 (unbound) or 1 (bound), also written ``0.0``/``1.0``."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: label {text!r} is not an integer class") from None
    if not value.is_integer():
        raise ValueError(f"{where}: label {text!r} is not an integer class")
    if value not in (0, 1):
        raise ValueError(f"{where}: label {text!r} is out of range; expected 0 (unbound) or 1 (bound)")
    return int(value)


def _label_file_for(fasta: Path) -> Path | None:
    for ext in LABEL_EXTENSIONS:
        candidate = fasta.with_suffix(ext)
        if candidate.is_file():
            inside(candidate, fasta.parent)
            return candidate
    return None


def _read_fasta_items(path: Path, require_labels: bool) -> list[dict[str, Any]]:
    records = read_fasta(path)
    if not records:
        raise ValueError(f"{path}: no FASTA records (no line starts with '>')")
    label_file = _label_file_for(path)
    if label_file is not None:
        labels = read_label_file(label_file)
        if len(labels) != len(records):
            raise ValueError(f"{label_file}: {len(labels)} labels for {len(records)} sequences in {path}")
        return [
            {"id": header.split()[0] if header else f"{path.stem}:{i}", "sequence": seq, "label": label}
            for i, ((header, seq), label) in enumerate(zip(records, labels))
        ]
    items = []
    for i, (header, seq) in enumerate(records):
        match = _HEADER_LABEL.match(header)
        if match is None and require_labels:
            raise ValueError(
                f"{path}: record {header!r} has no label; add a label file {path.with_suffix('.target')} "
                "or end each header with the label ('>id label=1', '>id|1' or '>id 1')"
            )
        name = (match.group("id") if match else header).split()
        item = {"id": name[0] if name else f"{path.stem}:{i}", "sequence": seq}
        if match is not None:
            item["label"] = _parse_label(match.group("label"), f"{path}: record {header!r}")
        items.append(item)
    return items


def _dataset_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in TABLE_EXTENSIONS)
    if not files:  # a folder holding both formats of one dataset is read from its tables only
        files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in FASTA_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"{root} holds no {'/'.join(TABLE_EXTENSIONS + FASTA_EXTENSIONS)} files")
    for file in files:
        inside(file, root)
    return files


def read_dna_dataset(
    path: str | os.PathLike,
    sequence_column: str = "sequence",
    label_column: str = "label",
    id_column: str = "id",
    require_labels: bool = True,
) -> list[dict[str, Any]]:
    """Reads a sequence file or a folder of them (CSV/TSV first; FASTA only if the folder has no table), then
    checks and upper-cases the sequences with :func:`check_dna_items`.

    Args:
        path: a CSV/TSV or FASTA file, or a folder of them.
        sequence_column: header of the tables' sequence column.
        label_column: header of the tables' label column.
        id_column: header of the tables' optional id column.
        require_labels: whether a file without labels is an error (training) or not (inference).

    Returns:
        items ``{"id", "sequence", "label", "source"}`` in file order; ``source`` is the file's stem.

    Raises:
        FileNotFoundError: if ``path`` is missing or a folder without sequence files.
        ValueError: naming the file (and line or record) for anything :func:`read_sequence_table`,
            :func:`read_fasta`, :func:`read_label_file` or :func:`check_dna_items` refuse, for a file that is a
            symlink out of the folder, or an id used in two files.
    """
    items = []
    for file in _dataset_files(Path(path)):
        if file.suffix.lower() in TABLE_EXTENSIONS:
            found = read_sequence_table(file, sequence_column, label_column, id_column, require_labels)
        elif file.suffix.lower() in FASTA_EXTENSIONS:
            found = _read_fasta_items(file, require_labels)
        else:
            raise ValueError(f"{file}: unknown sequence format; expected {TABLE_EXTENSIONS + FASTA_EXTENSIONS}")
        found = [{**item, "source": file.stem} for item in found]
        check_dna_items(found, where=str(file))
        items.extend(found)
        logger.info("read %d sequences from %s", len(found), file)
    check_unique_ids(items, str(path), origin="source")  # across files; each file was checked on its own
    return items


def check_dna_items(items: list[dict[str, Any]], where: str = "") -> None:
    """Upper-cases every ``sequence`` in place and checks it holds only A, C, G, T, N and is not empty, that ids are
    unique and that labels (where present) are 0 or 1.

    Sequences of unequal length are allowed: batches are padded and packed (:func:`pad_collate`), never truncated.

    Raises:
        ValueError: naming the record, its source and the problem (first invalid character, duplicate id, label).
    """
    if not items:
        raise ValueError(f"{where}: no sequences found")
    check_unique_ids(items, where, origin="source")
    lengths = set()
    for item in items:
        seq = item["sequence"].strip().upper()
        name = f"{where}: record {item['id']!r}" + (f" in {item['source']}" if "source" in item else "")
        if not seq:
            raise ValueError(f"{name} has an empty sequence")
        bad = _VALID.search(seq)
        if bad:
            raise ValueError(f"{name}: invalid character {bad.group()!r} at position {bad.start()} (allowed: ACGTN)")
        if item.get("label", 0) not in (0, 1):
            raise ValueError(f"{name}: label {item['label']} is out of range; expected 0 (unbound) or 1 (bound)")
        item["sequence"] = seq
        lengths.add(len(seq))
    if len(lengths) > 1:
        logger.info("sequence lengths vary from %d to %d bp: batches are padded and masked", min(lengths), max(lengths))


def pad_collate(batch: Sequence[dict[str, Any]], keys: Sequence[str] = ("image",), pad_value: float = 0.0) -> dict:
    """Collates dict samples, zero-padding each ``keys`` tensor along its first dimension to the batch maximum.

    Use it as a DataLoader ``collate_fn`` with unpadded ``(L, C)`` one-hot samples; pair it with a ``length`` key
    (see :class:`medkit.transforms.OneHotDNAd`) so the network can pack the batch and ignore the padding.
    """
    import torch  # here, not at the top: ``medkit.data`` (used by ``medkit data fetch``) stays free of torch
    from torch.utils.data import default_collate

    padded = {}
    for key in keys:
        tensors = [sample[key] for sample in batch]
        if len({t.shape[0] for t in tensors}) > 1:
            padded[key] = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=pad_value)
        else:
            padded[key] = torch.stack(tensors)
    rest = default_collate([{k: v for k, v in sample.items() if k not in padded} for sample in batch])
    return {**rest, **padded}


def prepare_dna_datalists(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    seed: int = 0,
    default_dataset_dir: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    sequence_column: str = "sequence",
    label_column: str = "label",
    id_column: str = "id",
    num_synthetic: int = 8000,
) -> dict[str, Any]:
    """Reads, checks and splits a labelled sequence dataset, writing ``<output_dir>/datalist.json``.

    The split is ``1 - test_fraction`` / ``test_fraction`` train/test, then ``val_fraction`` of train for validation,
    both by ``seed``. When ``dataset_dir`` is missing and equals ``default_dataset_dir``, a synthetic planted-motif set
    is written there first (and logged as synthetic). An existing ``datalist.json`` made from the same data and seed
    is reused, so resumed runs and evaluation see the same test sequences.

    Returns:
        ``{"dataset_dir", "seed", "synthetic", "train", "val", "test"}``.
    """

    def generate(root: Path) -> None:
        from medkit.data.synthetic_dna import generate_dna_dataset

        generate_dna_dataset(root, num_sequences=num_synthetic, seed=seed)

    def split(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        parts = split_items(items, (1.0 - test_fraction, test_fraction), seed=seed, names=("train", "test"))
        parts.update(split_items(parts["train"], (1.0 - val_fraction, val_fraction), seed=seed, names=("train", "val")))
        return {k: parts[k] for k in ("train", "val", "test")}

    def positive(datalist: dict[str, Any]) -> dict[str, float]:
        labels = [int(i["label"] > 0) for k in ("train", "val", "test") for i in datalist[k]]
        return {"positive": 100.0 * sum(labels) / len(labels)}

    columns = {"sequence_column": sequence_column, "label_column": label_column, "id_column": id_column}
    return prepare_datalists(
        dataset_dir,
        output_dir,
        read=lambda root: (read_dna_dataset(root, **columns, require_labels=True), {}),
        seed=seed,
        split=split,
        default_dataset_dir=default_dataset_dir,
        generate=generate,
        missing_hint="Point --dataset_dir at a CSV/TSV (id,sequence,label) file, a FASTA file with a .target/.labels "
        "file or labelled headers, or a folder holding them",
        synthetic_warning="Training on SYNTHETIC planted-motif DNA sequences generated by medkit in %s, not on real "
        "data. Pass --dataset_dir <ChIP-seq CSV or FASTA> for real work.",
        summary="DNA dataset {root}: {n_train} train / {n_val} val / {n_test} test sequences ({positive:.1f}% "
        "positive); split saved to {path}",
        summary_fields=positive,
        log=logger,
    )
