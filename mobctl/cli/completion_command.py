"""``mobctl completion SHELL``: the shell completion script, as kubectl and gh print theirs."""

from __future__ import annotations

import sys

import typer

from mobctl.cli.completion import SHELLS, complete_from
from mobctl.cli.help import App

commands = App()  # gathered by mobctl.cli.app


@commands.command()
def completion(
    shell: str = typer.Argument(
        ...,
        metavar="SHELL",
        help="bash, zsh or fish.",
        autocompletion=complete_from(SHELLS),
    ),
) -> None:
    """Print the shell completion script for bash, zsh or fish.

    It completes commands and options, and from the store: mob ids, flow names, run ids and
    step names. Load it in the shell's start-up file: `source <(mobctl completion bash)` in
    ~/.bashrc, the same with zsh in ~/.zshrc after compinit, or `mobctl completion fish |
    source` in ~/.config/fish/config.fish.

    Examples:

      mobctl completion bash > mobctl.bash

      mobctl completion fish > mobctl.fish  # or into ~/.config/fish/completions/
    """
    from mobctl.cli.completion import script
    from mobctl.errors import UsageError

    if shell not in SHELLS:
        raise UsageError(f"no completion for shell '{shell}'", hint="use bash, zsh or fish")
    sys.stdout.write(script(shell) + "\n")
