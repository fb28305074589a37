"""The parser's tables are cached per user (``voxflow.syntax.parser_cache``): loaded only from a
0700 directory and a 0600-like file of this user, keyed by grammar, options and versions, and
built as before whenever the cache is missing, unsafe, unwritable or corrupt."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import lark
import pytest
from lark import Lark, Tree

from voxflow.syntax import parser as flow_parser
from voxflow.syntax import parser_cache
from voxflow.syntax.parser_cache import cache_dir, cache_file, cached_lark

ROOT = Path(__file__).resolve().parents[2]
GRAMMAR = 'start: WORD+\nWORD: /[a-z]+/\n%ignore " "\n'


class _Counted:
    """Builds and loads the small test grammar, counting each."""

    def __init__(self) -> None:
        self.built = 0
        self.loaded = 0

    def build(self) -> Lark:
        self.built += 1
        return Lark(GRAMMAR, parser="lalr")

    def load(self, f: Any) -> Lark:
        parser = Lark.__new__(Lark)._load(f)
        self.loaded += 1  # only a load that worked
        return parser

    def get(self) -> Lark:
        return cached_lark(GRAMMAR, "test", self.build, self.load)


def _words(parser: Lark) -> list[str]:
    tree = parser.parse("hello cached world")
    assert isinstance(tree, Tree)
    return [str(t) for t in tree.children]


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$XDG_CACHE_HOME`` in a fresh directory; returns where voxflow's cache goes."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "voxflow"


def test_first_run_builds_and_saves_the_next_loads(xdg: Path) -> None:
    counted = _Counted()
    assert _words(counted.get()) == ["hello", "cached", "world"]
    assert (counted.built, counted.loaded) == (1, 0)
    assert stat.S_IMODE(xdg.stat().st_mode) == 0o700
    (saved,) = xdg.iterdir()
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert _words(counted.get()) == ["hello", "cached", "world"]
    assert (counted.built, counted.loaded) == (1, 1)


def test_the_key_is_the_grammar_the_options_and_the_versions(
    xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cache_file(xdg, GRAMMAR, "a")
    assert cache_file(xdg, GRAMMAR + "\n", "a") != first
    assert cache_file(xdg, GRAMMAR, "b") != first
    monkeypatch.setattr(lark, "__version__", "0.0.1")
    assert cache_file(xdg, GRAMMAR, "a") != first


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage\n", b"\x80\x05\x95", None],  # None: the saved file cut in half
    ids=["empty", "garbage", "bad-pickle", "truncated"],
)
def test_a_corrupt_file_is_rebuilt_and_replaced(xdg: Path, content: bytes | None) -> None:
    counted = _Counted()
    counted.get()
    (saved,) = xdg.iterdir()
    whole = saved.read_bytes()
    saved.write_bytes(whole[: len(whole) // 2] if content is None else content)
    assert _words(counted.get()) == ["hello", "cached", "world"]
    assert counted.built == 2
    counted.get()  # rewritten: this run loads it
    assert (counted.built, counted.loaded) == (2, 1)


def test_a_file_others_can_write_is_not_read(xdg: Path, tmp_path: Path) -> None:
    counted = _Counted()
    counted.get()
    (saved,) = xdg.iterdir()
    # what another user could have put there: a pickle that runs code when loaded
    ran = tmp_path / "the-pickle-ran"
    saved.write_bytes(pickle.dumps(_Exploit(str(ran))))
    os.chmod(saved, 0o666)
    assert _words(counted.get()) == ["hello", "cached", "world"]
    assert not ran.exists()
    assert counted.built == 2
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600  # replaced by our own


class _Exploit:
    """Unpickled, it makes the directory ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


def test_another_users_directory_is_not_used(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg.mkdir(parents=True, mode=0o700)
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    assert cache_dir() is None
    counted = _Counted()
    counted.get()
    counted.get()
    assert (counted.built, counted.loaded) == (2, 0)
    assert list(xdg.iterdir()) == []


def test_a_symlinked_directory_is_not_used(xdg: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir(mode=0o700)
    xdg.parent.mkdir()
    xdg.symlink_to(elsewhere)
    assert cache_dir() is None
    _Counted().get()
    assert list(elsewhere.iterdir()) == []


def test_an_open_directory_of_ours_is_closed_to_others(xdg: Path) -> None:
    xdg.mkdir(parents=True)
    os.chmod(xdg, 0o777)
    assert cache_dir() == xdg
    assert stat.S_IMODE(xdg.stat().st_mode) == 0o700


def test_no_usable_directory_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    assert cache_dir() is None
    counted = _Counted()
    assert _words(counted.get()) == ["hello", "cached", "world"]
    assert counted.built == 1


def test_a_relative_xdg_value_is_ignored_for_the_home_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "voxflow"


def test_an_unwritable_cache_builds_and_leaves_nothing(
    xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parser_cache.os, "replace", full)
    counted = _Counted()
    assert _words(counted.get()) == ["hello", "cached", "world"]
    counted.get()
    assert (counted.built, counted.loaded) == (2, 0)
    assert list(xdg.iterdir()) == []  # the temporary file was removed


def test_the_flow_parser_from_the_cache_parses_as_the_built_one(xdg: Path) -> None:
    text = (ROOT / "flows" / "main_ivr.flow").read_text(encoding="utf-8")
    built = flow_parser._parser.__wrapped__()
    assert len(list(xdg.iterdir())) == 1
    loaded = flow_parser._parser.__wrapped__()
    assert loaded is not built
    assert repr(loaded.parse(text)) == repr(built.parse(text))  # spans included
    bare = flow_parser.bare_parser.__wrapped__()
    assert flow_parser.bare_parser.__wrapped__().parse(text) == bare.parse(text)


def test_validate_with_a_corrupt_cache_still_checks(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}
    argv = [sys.executable, "-m", "voxflow", "validate", str(ROOT / "flows" / "main_ivr.flow")]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    (saved,) = (tmp_path / "voxflow").iterdir()
    saved.write_bytes(saved.read_bytes()[:1000])
    again = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, first.stderr)
