"""Every `gato` subcommand parses its arguments: ``gato <command> --help`` exits 0 with its usage.

In-process (no subprocess per command): `gato.cli.main` imports each command's module and parses.
"""

from __future__ import annotations

import pytest

from gato import cli


@pytest.mark.parametrize("command", sorted(cli.SUBCOMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.lstrip().lower().startswith("usage:") and command in out.splitlines()[0], out[:200]


def test_the_table_names_existing_functions():
    import importlib

    for command, (target, help_) in cli.SUBCOMMANDS.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), command
        assert help_, command


def test_unknown_command_suggests_the_closest(capsys):
    assert cli.main(["rollot"]) == 2
    assert "rollout" in capsys.readouterr().err
