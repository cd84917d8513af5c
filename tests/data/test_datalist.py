from __future__ import annotations

import pytest

from medkit.data import load_datalist, save_datalist, split_items


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
