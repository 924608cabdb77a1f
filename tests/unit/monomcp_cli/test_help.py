"""Every `monomcp` command says what it does and every option what it takes: `keys list`,
`toolkit upsert --visibility` and a dozen others showed a bare name in `--help`."""

from __future__ import annotations

from typing import Any

import typer.main

from monomcp_cli.main import app


def _undocumented(command: Any, path: tuple[str, ...]) -> list[str]:
    subcommands = getattr(command, "commands", None)
    if subcommands:
        return [gap for name, sub in subcommands.items() for gap in _undocumented(sub, (*path, name))]
    gaps = [] if (command.help or command.short_help) else [" ".join(path)]
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help" and not param.help:
            gaps.append(f"{' '.join(path)} {param.opts[0]}")
    return gaps


def test_every_command_and_option_has_help() -> None:
    assert _undocumented(typer.main.get_command(app), ()) == []
