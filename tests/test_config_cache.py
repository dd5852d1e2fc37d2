"""Tests for aws_iot_mock.config_cache: the parsed form of YAML config files kept between runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from aws_iot_mock.config import load_config
from aws_iot_mock.config_cache import MAX_ENTRIES, cache_directory, cached_document, store_document
from aws_iot_mock.errors import ConfigError

TEXT = "region: eu-west-1\nlisteners:\n  - door: mqtt\n    port: 8883\n"
DOCUMENT = {"region": "eu-west-1", "listeners": [{"door": "mqtt", "port": 8883}]}


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "aws-iot-mock" / "config"


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.exists() else []


def test_the_cache_lives_under_xdg_cache_home(cache_home: Path) -> None:
    assert cache_directory() == cache_home


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", "/home/someone")

    assert cache_directory() == Path("/home/someone/.cache/aws-iot-mock/config")


def test_a_stored_document_is_read_back(cache_home: Path) -> None:
    assert cached_document(TEXT) == (False, None)

    store_document(TEXT, DOCUMENT)

    assert cached_document(TEXT) == (True, DOCUMENT)
    assert cached_document(TEXT + "# other text\n") == (False, None)
    [entry] = _entries(cache_home)
    assert entry.stat().st_mode & 0o777 == 0o600
    assert cache_home.stat().st_mode & 0o777 == 0o700


def test_load_config_gives_the_same_config_from_the_cache(tmp_path: Path, cache_home: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(TEXT)

    parsed = load_config(path)
    assert len(_entries(cache_home)) == 1
    assert load_config(path) == parsed


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("when: 2026-12-05\n", "a YAML date"),
        ("1: one\n", "a number as a key"),
        ("limit: .nan\n", "not a finite number"),
        ("limit: .inf\n", "not a finite number"),
    ],
)
def test_documents_json_does_not_represent_exactly_are_not_kept(
    text: str, why: str, tmp_path: Path, cache_home: Path
) -> None:
    store_document(text, yaml.safe_load(text))

    assert _entries(cache_home) == [], why


def test_a_file_that_does_not_parse_is_not_kept(tmp_path: Path, cache_home: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("region: [eu-west-1\n")

    for _ in range(2):  # the same error at every run
        with pytest.raises(ConfigError, match="invalid YAML"):
            load_config(path)
    assert _entries(cache_home) == []


def test_an_invalid_config_fails_the_same_from_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("regoin: eu-west-1\n")

    messages = []
    for _ in range(2):
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "regoin" in messages[0]


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_an_entry_others_may_write_is_ignored(mode: int, cache_home: Path) -> None:
    store_document(TEXT, DOCUMENT)
    [entry] = _entries(cache_home)
    entry.write_text(json.dumps({"document": {"region": "forged"}}))
    entry.chmod(mode)

    assert cached_document(TEXT) == (False, None)
    entry.chmod(0o600)  # the twin: the user's own entry is read
    assert cached_document(TEXT) == (True, {"region": "forged"})


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"other": 1}'])
def test_a_malformed_entry_is_a_miss(content: str, cache_home: Path) -> None:
    store_document(TEXT, DOCUMENT)
    [entry] = _entries(cache_home)
    entry.write_text(content)

    assert cached_document(TEXT) == (False, None)


def test_the_oldest_entries_beyond_the_limit_are_removed(cache_home: Path) -> None:
    for index in range(MAX_ENTRIES + 3):
        store_document(f"region: r{index}\n", {"region": f"r{index}"})
        [newest] = sorted(_entries(cache_home), key=lambda p: p.stat().st_mtime)[-1:]
        os.utime(newest, (index, index))  # distinct ages, whatever the clock's resolution

    assert len(_entries(cache_home)) == MAX_ENTRIES
    assert cached_document("region: r0\n") == (False, None)
    assert cached_document(f"region: r{MAX_ENTRIES + 2}\n") == (
        True,
        {"region": f"r{MAX_ENTRIES + 2}"},
    )


def test_an_unwritable_cache_only_costs_the_parse(tmp_path: Path, cache_home: Path) -> None:
    cache_home.parent.parent.mkdir(parents=True)
    cache_home.parent.parent.joinpath("aws-iot-mock").write_text("a file in the way")
    path = tmp_path / "config.yaml"
    path.write_text(TEXT)

    assert load_config(path).region == "eu-west-1"
    assert cached_document(TEXT) == (False, None)


def test_no_home_directory_means_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", no_home)

    assert cache_directory() is None
    store_document(TEXT, DOCUMENT)
    assert cached_document(TEXT) == (False, None)
