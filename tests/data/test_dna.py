"""DNA readers, checks, padding collate, splits and the synthetic default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medkit.data import (
    pad_collate,
    prepare_dna_datalists,
    read_dna_dataset,
    read_fasta,
    read_label_file,
    read_sequence_table,
)
from medkit.data.synthetic_dna import MOTIF, synthesize_sequences
from medkit.transforms import OneHotDNAd


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_csv_reader_with_default_columns(tmp_path):
    f = _write(tmp_path / "a.csv", "id,sequence,label\nr1,ACGT,1\nr2,acgn,0\n")
    items = read_dna_dataset(f)
    assert [(i["id"], i["sequence"], i["label"], i["source"]) for i in items] == [
        ("r1", "ACGT", 1, "a"),
        ("r2", "ACGN", 0, "a"),
    ]


def test_tsv_reader_with_configured_columns_and_no_id(tmp_path):
    f = _write(tmp_path / "b.tsv", "seq\tbound\nAAAA\t1\nCCC\t0\n")
    items = read_sequence_table(f, sequence_column="seq", label_column="bound")
    assert [(i["id"], i["sequence"], i["label"]) for i in items] == [("b:2", "AAAA", 1), ("b:3", "CCC", 0)]
    with pytest.raises(ValueError, match="no label column 'label'"):
        read_sequence_table(f, sequence_column="seq")


def test_fasta_with_one_hot_target_file(tmp_path):
    fa = _write(tmp_path / "s.fa", ">chr1:1-5\nACG\nTA\n>chr2:7-9_shuf\nGGT\n")
    _write(tmp_path / "s.target", "1\t0\n0\t1\n")
    assert read_fasta(fa) == [("chr1:1-5", "ACGTA"), ("chr2:7-9_shuf", "GGT")]
    items = read_dna_dataset(fa)
    assert [(i["id"], i["sequence"], i["label"]) for i in items] == [
        ("chr1:1-5", "ACGTA", 1),
        ("chr2:7-9_shuf", "GGT", 0),
    ]


def test_fasta_with_one_label_per_line(tmp_path):
    fa = _write(tmp_path / "s.fasta", ">a\nAC\n>b\nGT\n>c\nNN\n")
    _write(tmp_path / "s.labels", "0\n1\n1\n")
    assert [i["label"] for i in read_dna_dataset(fa)] == [0, 1, 1]


@pytest.mark.parametrize("header", ["r1 label=1", "r1|1", "r1 1"], ids=["label=", "pipe", "space"])
def test_fasta_with_labels_in_headers(tmp_path, header):
    fa = _write(tmp_path / "h.fa", f">{header}\nACGT\n>r2 label=0\nTTTT\n")
    items = read_dna_dataset(fa)
    assert [(i["id"], i["label"]) for i in items] == [("r1", 1), ("r2", 0)]


def test_fasta_without_labels_fails_unless_labels_are_optional(tmp_path):
    fa = _write(tmp_path / "u.fa", ">chr1:1-4\nACGT\n")
    with pytest.raises(ValueError, match="record 'chr1:1-4' has no label"):
        read_dna_dataset(fa)
    assert read_dna_dataset(fa, require_labels=False) == [{"id": "chr1:1-4", "sequence": "ACGT", "source": "u"}]


@pytest.mark.parametrize("text", ["1\t1\n", "x\n", "0.5\n"], ids=["two-ones", "word", "fraction"])
def test_label_file_rejects_bad_rows(tmp_path, text):
    with pytest.raises(ValueError, match="bad.target:1"):
        read_label_file(_write(tmp_path / "bad.target", text))


def test_label_count_must_match(tmp_path):
    fa = _write(tmp_path / "s.fa", ">a\nAC\n>b\nGT\n")
    _write(tmp_path / "s.target", "1\t0\n")
    with pytest.raises(ValueError, match="1 labels for 2 sequences"):
        read_dna_dataset(fa)


def test_invalid_character_names_the_record_and_file(tmp_path):
    f = _write(tmp_path / "x.csv", "id,sequence,label\nok,ACGT,1\nweird,ACUG,0\n")
    with pytest.raises(ValueError, match=r"record 'weird' in x: invalid character 'U' at position 2"):
        read_dna_dataset(f)


def test_folder_prefers_tables_over_fasta(tmp_path):
    _write(tmp_path / "d" / "t.csv", "id,sequence,label\na,AC,1\n")
    _write(tmp_path / "d" / "t.fa", ">a\nAC\n")
    assert [i["source"] for i in read_dna_dataset(tmp_path / "d")] == ["t"]


def test_unequal_lengths_are_padded_not_truncated(tmp_path):
    f = _write(tmp_path / "v.csv", "id,sequence,label\na,ACGTACG,1\nb,AC,0\nc,ACGTA,1\n")
    items = read_dna_dataset(f)
    assert [len(i["sequence"]) for i in items] == [7, 2, 5]
    encode = OneHotDNAd(keys="sequence", output_keys="image", length_key="length")
    batch = pad_collate([encode({**i, "label": torch.tensor([float(i["label"])])}) for i in items])
    assert batch["image"].shape == (3, 7, 4)
    assert batch["length"].tolist() == [7, 2, 5]
    assert batch["image"][1, 2:].abs().sum() == 0  # padding is all zeros
    assert batch["label"].shape == (3, 1) and batch["id"] == ["a", "b", "c"]


def test_split_is_80_20_then_10_percent_val_deterministic_and_saved(tmp_path):
    seqs, labels = synthesize_sequences(500, length=20, seed=1)
    rows = "".join(f"s{i},{s},{y}\n" for i, (s, y) in enumerate(zip(seqs, labels)))
    data = _write(tmp_path / "d.csv", "id,sequence,label\n" + rows)
    first = prepare_dna_datalists(data, tmp_path / "run1", seed=3)
    assert [len(first[k]) for k in ("train", "val", "test")] == [360, 40, 100]
    ids = [i["id"] for k in ("train", "val", "test") for i in first[k]]
    assert sorted(ids) == sorted(f"s{i}" for i in range(500))
    saved = json.loads((tmp_path / "run1" / "datalist.json").read_text())
    assert saved["test"] == first["test"] and saved["seed"] == 3 and saved["synthetic"] is False
    again = prepare_dna_datalists(data, tmp_path / "run2", seed=3)
    assert again["test"] == first["test"] and again["val"] == first["val"]
    assert prepare_dna_datalists(data, tmp_path / "run3", seed=4)["test"] != first["test"]


def test_missing_default_generates_synthetic_csv(tmp_path, caplog):
    default = tmp_path / "dna_synthetic"
    dl = prepare_dna_datalists(default, tmp_path / "run", default_dataset_dir=default, num_synthetic=100)
    assert (default / "sequences.csv").is_file() and (default / "SYNTHETIC.md").is_file()
    assert dl["synthetic"] is True and "SYNTHETIC" in caplog.text
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_dna_datalists(tmp_path / "elsewhere", tmp_path / "run2", default_dataset_dir=default)


def test_synthetic_positives_carry_the_motif():
    seqs, labels = synthesize_sequences(200, length=50, mutation_rate=0.0, seed=0)
    assert {len(s) for s in seqs} == {50} and 0 < sum(labels) < 200
    assert all(MOTIF in s for s, y in zip(seqs, labels) if y == 1)


def test_real_chipseq_encode(real_data_dir):
    root = real_data_dir / "dna_binding" / "chipseq_encode"
    items = read_dna_dataset(root)
    assert len(items) == 16635 and {len(i["sequence"]) for i in items} == {101}
    assert {i["label"] for i in items} == {0, 1}
    fasta = read_dna_dataset(root / "train.fa")
    assert [(i["id"], i["sequence"], i["label"]) for i in fasta] == [
        (i["id"], i["sequence"], i["label"]) for i in items
    ]
