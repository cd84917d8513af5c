from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from medkit.data import load_datalist, save_datalist, split_items
from medkit.data.datalist import SYNTHETIC_MARKER, prepare_datalists


def test_split_is_deterministic_and_complete():
    items = [f"case{i}" for i in range(50)]
    a = split_items(items, seed=3)
    b = split_items(items, seed=3)
    assert a == b
    assert [len(a[k]) for k in ("train", "val", "test")] == [35, 5, 10]
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(items)
    assert split_items(items, seed=4) != a


@pytest.mark.parametrize("n", [3, 4, 7, 11, 200])
def test_every_part_non_empty(n):
    parts = split_items(list(range(n)), seed=0)
    assert all(parts[k] for k in parts)
    assert sum(len(v) for v in parts.values()) == n


def test_split_of_200_is_70_10_20():
    parts = split_items(list(range(200)), seed=0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 140, "val": 20, "test": 40}


@pytest.mark.parametrize(
    "kwargs,match",
    [({"fractions": (0.5, 0.6, 0.1)}, "sum to 1"), ({"fractions": (0.5, 0.5)}, "2 fractions"), ({}, "at least 3")],
)
def test_bad_split_arguments(kwargs, match):
    items = [1, 2] if not kwargs else list(range(10))
    with pytest.raises(ValueError, match=match):
        split_items(items, **kwargs)


def test_datalist_round_trip(tmp_path):
    path = save_datalist({"train": [{"image": "a"}], "test": []}, tmp_path / "sub" / "datalist.json")
    assert load_datalist(path, "train") == [{"image": "a"}]
    with pytest.raises(KeyError, match="no part 'val'"):
        load_datalist(path, "val")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_datalist(tmp_path / "missing.json")


def _read_numbers(root: Path) -> tuple[list[int], dict[str, Any]]:
    numbers = [int(n) for n in (root / "numbers.txt").read_text().split()]
    return numbers, {"layout": "numbers"}


def _write_numbers(root: Path, count: int = 20) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "numbers.txt").write_text(" ".join(map(str, range(count))))
    return root


def _prepare(dataset_dir: Path, output_dir: Path, **kwargs: Any) -> dict[str, Any]:
    defaults = {"read": _read_numbers, "missing_hint": "Point --dataset_dir at a numbers folder"}
    return prepare_datalists(dataset_dir, output_dir, **{**defaults, **kwargs})


def test_prepare_reads_splits_saves_and_logs(tmp_path, caplog):
    root = _write_numbers(tmp_path / "data")
    summary = "{layout} set {root}: {n_train}/{n_val}/{n_test}; saved to {path}"
    with caplog.at_level(logging.INFO):
        datalist = _prepare(root, tmp_path / "run", seed=2, summary=summary)
    assert datalist == {
        "dataset_dir": str(root.resolve()),
        "layout": "numbers",
        "seed": 2,
        "synthetic": False,
        **split_items(list(range(20)), seed=2),
    }
    assert load_datalist(tmp_path / "run" / "datalist.json") == datalist
    assert f"numbers set {root}: 14/2/4; saved to {tmp_path / 'run' / 'datalist.json'}" in caplog.text
    assert "SYNTHETIC" not in caplog.text


def test_prepare_reuses_the_saved_split_for_the_same_folder_and_seed(tmp_path):
    root = _write_numbers(tmp_path / "data")
    first = _prepare(root, tmp_path / "run", seed=1)
    (root / "numbers.txt").write_text("100 101 102 103")  # a reuse must not read the folder again
    assert _prepare(root, tmp_path / "run", seed=1) == first
    assert _prepare(root, tmp_path / "run", seed=1, reuse=False)["train"] != first["train"]
    other_seed = _prepare(root, tmp_path / "run", seed=3)
    assert sorted(other_seed["train"] + other_seed["val"] + other_seed["test"]) == [100, 101, 102, 103]


def test_prepare_reuses_only_when_also_match_agrees(tmp_path):
    root = _write_numbers(tmp_path / "data")

    def read(path: Path) -> tuple[list[int], dict[str, Any]]:
        return _read_numbers(path)[0], {"subset": 5}

    first = _prepare(root, tmp_path / "run", read=read, also_match={"subset": 5})
    (root / "numbers.txt").write_text("7 8 9")
    assert _prepare(root, tmp_path / "run", read=read, also_match={"subset": 5}) == first
    assert _prepare(root, tmp_path / "run", read=read, also_match={"subset": 6})["train"] != first["train"]


def test_prepare_generates_only_the_missing_default_and_warns(tmp_path, caplog):
    default = tmp_path / "default"

    def generate(root: Path) -> None:
        _write_numbers(root, count=9)
        (root / SYNTHETIC_MARKER).write_text("made by the test")

    with pytest.raises(FileNotFoundError, match=r"dataset_dir .*elsewhere does not exist\. Point --dataset_dir"):
        _prepare(tmp_path / "elsewhere", tmp_path / "run", default_dataset_dir=default, generate=generate)
    assert not default.exists()
    with caplog.at_level(logging.WARNING):
        datalist = _prepare(default, tmp_path / "run", default_dataset_dir=default, generate=generate,
                            synthetic_warning="fake numbers in %s")  # fmt: skip
    assert datalist["synthetic"] is True and f"fake numbers in {default}" in caplog.text
    assert sum(len(datalist[k]) for k in ("train", "val", "test")) == 9


def test_prepare_custom_split_and_summary_fields(tmp_path, caplog):
    root = _write_numbers(tmp_path / "data", count=6)
    with caplog.at_level(logging.INFO):
        datalist = _prepare(
            root,
            tmp_path / "run",
            split=lambda items: {"odd": [i for i in items if i % 2], "even": [i for i in items if not i % 2]},
            summary="{n_odd} odd, {n_even} even, largest {largest}",
            summary_fields=lambda dl: {"largest": max(dl["odd"] + dl["even"])},
        )
    assert datalist["odd"] == [1, 3, 5] and datalist["even"] == [0, 2, 4]
    assert "3 odd, 3 even, largest 5" in caplog.text


def test_prepare_without_hint_leaves_the_missing_folder_to_the_reader(tmp_path):
    with pytest.raises(FileNotFoundError, match="numbers.txt"):
        _prepare(tmp_path / "nothing", tmp_path / "run", missing_hint=None)


def test_pair_by_stem_pairs_in_image_order_and_names_the_first_unpaired_image(tmp_path):
    from medkit.data.datalist import pair_by_stem

    images = [tmp_path / "b.png", tmp_path / "a.png"]
    labels = {"a": tmp_path / "a_label.png", "b": tmp_path / "b_label.png"}
    items = pair_by_stem(images, labels, lambda p: f"{p.name} unpaired")
    assert [(i["id"], Path(i["label"]).name) for i in items] == [("b", "b_label.png"), ("a", "a_label.png")]
    with pytest.raises(ValueError, match="^c.png unpaired$"):
        pair_by_stem([*images, tmp_path / "c.png"], labels, lambda p: f"{p.name} unpaired")
