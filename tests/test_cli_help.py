"""The command line's help: every subcommand describes itself, option names agree, and a
bare ``ibdata cache`` shows what it can do."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from ibdata.cli import _parser
from tests.conftest import run_ibdata


def subcommands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every subcommand of ``parser``, nested ones too, with its full name."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{prefix}{name}", sub))
                found.extend(subcommands(sub, f"{prefix}{name} "))
    return found


def ibdata(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ibdata ARGS`` without IB_* and IBDATA_* variables."""
    return run_ibdata(*args)


def test_every_subcommand_has_a_description() -> None:
    """Each subcommand's ``--help`` opens with a description, not with its options alone."""
    found = subcommands(_parser(["serve"]))
    names = [name for name, _ in found]
    for wanted in ("bars", "sim", "demo", "cache", "cache info", "cache copy", "export"):
        assert wanted in names
    missing = [name for name, sub in found if not (sub.description or "").strip()]
    assert missing == []


@pytest.mark.parametrize("command", ["bars", "export", "cache info", "cache clear"])
def test_the_store_is_named_with_cache_everywhere(command: str) -> None:
    """``--cache STORE`` names the store in every command that takes one (``cache info``
    and ``cache clear`` also accept ``--path``, its older name)."""
    parser = dict(subcommands(_parser()))[command]
    (option,) = [a for a in parser._actions if "--cache" in a.option_strings]
    assert option.metavar == "STORE"


def test_bare_cache_prints_its_help_and_exits_0() -> None:
    """``ibdata cache`` lists its subcommands on stdout and exits 0."""
    out = ibdata("cache")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: ibdata cache")
    for sub in ("info", "clear", "copy"):
        assert f"    {sub} " in out.stdout
    assert out.stderr == ""


@pytest.mark.parametrize("command", ["sim", "demo"])
def test_sim_and_demo_help_describes_them(command: str) -> None:
    """``ibdata sim --help`` and ``ibdata demo --help`` say what they do."""
    out = ibdata(command, "--help")
    assert out.returncode == 0
    assert "simulator" in out.stdout.split("options:")[0].lower()
