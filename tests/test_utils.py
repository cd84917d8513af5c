from __future__ import annotations

import json

import pytest

from medkit.utils import TEMP_PREFIX, as_bool, save_json


@pytest.mark.parametrize(
    "value,expected",
    [
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
        ("yes", True),
        ("off", False),
    ],
)
def test_as_bool(value, expected):
    assert as_bool(value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, None])
def test_as_bool_rejects(value):
    with pytest.raises(ValueError, match="expected a boolean"):
        as_bool(value)


def test_save_json_is_atomic_and_readable(tmp_path):
    path = save_json({"a": 1, "p": tmp_path}, tmp_path / "x" / "s.json")
    assert json.loads(path.read_text()) == {"a": 1, "p": str(tmp_path)}
    assert not list(path.parent.glob(f"{TEMP_PREFIX}*"))


def test_select_names_the_bad_choice():
    from medkit.utils import select

    assert select({"a": 1, "b": 2}, "b") == 2
    with pytest.raises(ValueError, match=r"unknown loss 'c'; choose one of \['a', 'b'\]"):
        select({"a": 1, "b": 2}, "c", "loss")


def test_build_by_name_calls_the_builder_and_lists_known_names():
    from medkit.utils import build_by_name

    builders = {"pair": lambda name="x", what=1: (name, what)}
    assert build_by_name(builders, "pair", "thing", name="y", what=2) == ("y", 2)
    with pytest.raises(ValueError, match=r"unknown thing 'c'; known: \['pair'\]"):
        build_by_name(builders, "c", "thing")


@pytest.mark.parametrize(
    "value,expected",
    [(40, (40, 40)), ((40, 50), (40, 50)), ([48, 32], (48, 32))],
    ids=["square", "tuple", "list"],
)
def test_as_image_size(value, expected):
    from medkit.utils import as_image_size

    assert as_image_size(value, 32) == expected


@pytest.mark.parametrize(
    "value,match",
    [((40, 40, 3), "an int or a pair of ints"), ((True, 40), "an int or a pair of ints"), ((10, 40), "at least 32")],
    ids=["three-sides", "bool", "too-small"],
)
def test_as_image_size_rejects(value, match):
    from medkit.utils import as_image_size

    with pytest.raises(ValueError, match=match):
        as_image_size(value, 32)


def test_save_figure_writes_the_png_and_closes_the_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medkit.utils import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "a" / "f.png")
    assert path == tmp_path / "a" / "f.png" and path.read_bytes().startswith(b"\x89PNG")
    assert not plt.fignum_exists(fig.number)
