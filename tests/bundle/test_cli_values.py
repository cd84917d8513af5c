"""medkit.bundle.cli_values: the one parser of command-line values (medkit explain --override, medkit sweep --set)."""

from __future__ import annotations

import pytest

from medkit.bundle.cli_values import parse_overrides, parse_set, parse_value, split_pair


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True),
        ("null", None),
        ("1e-3", 0.001),
        ("[true, 4]", [True, 4]),
        ("(1, 2)", (1, 2)),
        ("'a,b'", "a,b"),
        ("dice", "dice"),
        ("$@lr * 10", "$@lr * 10"),
    ],
    ids=["json-bool", "json-null", "float", "json-list", "python-tuple", "python-str", "word", "expression"],
)
def test_parse_value(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "text, expected",
    [("a=1", ("a", "1")), ("--a#b=x=y", ("a#b", "x=y")), ("a=", ("a", "")), ("a", None), ("=1", None)],
    ids=["plain", "dashes-and-equals", "empty-value", "no-equals", "no-key"],
)
def test_split_pair(text, expected):
    assert split_pair(text) == expected


def test_overrides_and_sets_read_keys_the_same_way():
    assert parse_overrides(["--optimizer#lr=1e-3", "flag=true", "name=dice"]) == {
        "optimizer#lr": 0.001,
        "flag": True,
        "name": "dice",
    }
    assert parse_set("--optimizer#lr=1e-3,1e-4") == ("optimizer#lr", ["1e-3", "1e-4"])
    with pytest.raises(ValueError, match="override 'oops' is not KEY=VALUE"):
        parse_overrides(["oops"])
    with pytest.raises(ValueError, match="--set expects KEY=V1,V2"):
        parse_set("lr=")
