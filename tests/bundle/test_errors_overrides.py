"""One-line errors (medkit.bundle.errors) and override checks (medkit.bundle.overrides)."""

from __future__ import annotations

import json
import sys

import pytest

from medkit.bundle.errors import UserError, install_excepthook, root_cause, user_message
from medkit.bundle.overrides import (
    check_cli_overrides,
    check_override_keys,
    cli_override_keys,
    cli_overrides,
    config_ids,
    parse_config_files,
)


def _chained(inner: BaseException) -> RuntimeError:
    try:
        try:
            raise inner
        except BaseException as e:
            raise RuntimeError("Failed to evaluate ConfigExpression") from e
    except RuntimeError as outer:
        return outer


def test_root_cause_walks_the_chain():
    outer = _chained(ValueError("x"))
    assert isinstance(root_cause(outer), ValueError)


def test_medkit_errors_get_one_line_and_others_none(tmp_path):
    from medkit.data.datalist import load_datalist

    try:
        load_datalist(tmp_path / "none.json")
    except FileNotFoundError as exc:
        message = user_message(_chained(exc))
    assert message.startswith("FileNotFoundError: datalist ") and "\n" not in message
    assert user_message(_chained(ValueError("raised outside medkit"))) is None  # a library bug keeps its traceback
    assert user_message(UserError("bad\n  value")) == "UserError: bad value"


def test_excepthook_prints_the_message_last(capsys, monkeypatch):
    monkeypatch.delenv("MEDKIT_DEBUG", raising=False)
    previous = install_excepthook()
    try:
        sys.excepthook(UserError, UserError("unknown override --epoch"), None)
    finally:
        sys.excepthook = previous
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "medkit: UserError: unknown override --epoch (set MEDKIT_DEBUG=1 for the traceback)"
    ]


def test_config_ids_nest_with_hash():
    assert config_ids({"a": {"b": [1, {"c": 2}]}, "+d": 3}) == {"a", "a#b", "a#b#0", "a#b#1", "a#b#1#c", "d"}


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(
        json.dumps({"epochs": 2, "learning_rate": 0.1, "net": {"_target_": "torch.nn.Linear", "in_features": 2}})
    )
    return path


def test_check_override_keys(config):
    check_override_keys(["epochs", "net#in_features", "net#bias", "config_file", "_meta_#version"], [config])
    with pytest.raises(UserError, match=r"--learning_rat: did you mean --learning_rate\?"):
        check_override_keys(["learning_rat"], [config])
    with pytest.raises(UserError, match=r"unknown override --zzz: no such key in .*train.json"):
        check_override_keys(["zzz"], [config])
    with pytest.raises(UserError, match="config file .*missing.json does not exist"):
        check_override_keys(["epochs"], [config.parent / "missing.json"])


def test_command_line_parsing(config):
    argv = ["run", "--config_file", f"['{config}']", "--epochs", "3", "--net#bias=false", "--resume", "true"]
    assert cli_override_keys(argv) == (["epochs", "net#bias", "resume"], [str(config)])
    assert cli_override_keys(["verify_metadata", "--x", "1"]) is None
    assert parse_config_files("a.json,b.json") == ["a.json", "b.json"]
    assert cli_overrides(argv[1:], drop=("resume",)) == ["--epochs", "3", "--net#bias=false"]
    with pytest.raises(UserError, match="--resume"):
        check_cli_overrides(argv)
    check_cli_overrides(argv[:-2])
