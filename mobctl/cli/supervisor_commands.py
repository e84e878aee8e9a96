"""``mobctl supervisor``: a mob's supervisor authority (Ed25519 key, epochs, rotation)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mobctl.cli.common import open_store, store_option, timeout_option
from mobctl.cli.completion import complete_mob
from mobctl.cli.help import App
from mobctl.cli.output import LISTING, NAMED, json_option, local_time, machine
from mobctl.cli.terminal import say

if TYPE_CHECKING:
    from mobctl.api.supervisor import SupervisorChange
    from mobctl.store.supervisor import SupervisorView


commands = App()  # gathered by mobctl.cli.app
supervisor_app = App(
    help="A mob's supervisor authority: Ed25519 key, epoch, rotation.",
    no_args_is_help=True,
)
commands.add_typer(supervisor_app, name="supervisor")

MOB = typer.Argument(..., metavar="MOB", help="A mob id.", autocompletion=complete_mob)


@supervisor_app.command("init")
def supervisor_init(
    mob: str = MOB,
    force: bool = typer.Option(
        False, "--force", help="If the mob already has an authority, rotate its key instead."
    ),
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Create a mob's supervisor authority (a fresh key, epoch 0).

    The key is an Ed25519 key. The secret is stored in the store with mode 0600 (encrypted with
    scrypt + AES-256-GCM when MOBCTL_KEY_PASSPHRASE is set) and is never printed. A second init is
    refused; --force rotates the existing key instead. From now on the mob's event log is signed: a
    checkpoint is written after every finished run.

    Examples:

      mobctl supervisor init hello

      MOBCTL_KEY_PASSPHRASE=... mobctl supervisor init code-review --force -o json
    """
    from mobctl import api

    fmt = NAMED.choose(output, as_json)
    change = api.supervisor_init(open_store(store, lock_timeout), mob, force=force)
    _print_change(change, fmt)


@supervisor_app.command("rotate")
def supervisor_rotate(
    mob: str = MOB,
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Replace a mob's supervisor key with a fresh one at the next epoch.

    Two steps, each a compare-and-swap: the new key is recorded as pending, then promoted.
    If an earlier rotate was interrupted between them, this completes it with the same key.
    Checkpoints signed by old keys keep verifying (their public keys stay in the history).

    Example:

      mobctl supervisor rotate code-review
    """
    from mobctl import api

    fmt = NAMED.choose(output, as_json)
    _print_change(api.supervisor_rotate(open_store(store, lock_timeout), mob), fmt)


@supervisor_app.command("show")
def supervisor_show(
    mob: str = MOB,
    output: str = LISTING.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Show a mob's supervisor authority (never its secret).

    Its epoch, peer id, public key, protocol version, how the secret is kept, a pending
    rotation and the keys of past epochs.

    Example:

      mobctl supervisor show code-review -o yaml
    """
    from mobctl import api

    fmt = LISTING.choose(output, as_json)
    view = api.supervisor_show(open_store(store, lock_timeout), mob)
    if not machine(fmt, view.document(), [view.public_peer_id]):
        _print_view(view)


def _print_change(change: SupervisorChange, fmt: str) -> None:
    view = change.view
    if machine(fmt, change.document(), [view.public_peer_id]):
        return
    if change.action == "created":
        say(f"created the supervisor of {view.mob_id} at epoch {view.epoch}")
    else:
        say(
            f"rotated the supervisor of {view.mob_id}: epoch {change.previous_epoch} -> "
            f"{view.epoch}"
        )
    if change.resumed:
        say(f"completed the rotation an earlier command began (operation {change.operation_id})")
    say(f"peer id     {view.public_peer_id}")
    say(f"public key  {view.public_key}")


def _print_view(view: SupervisorView) -> None:
    secret = (
        "plaintext, file mode 600"
        if view.secret_at_rest == "plaintext"
        else f"encrypted ({view.secret_at_rest})"
    )
    rows = [
        ("mob", view.mob_id),
        ("epoch", str(view.epoch)),
        ("peer id", view.public_peer_id),
        ("public key", view.public_key),
        ("protocol", str(view.protocol_version)),
        ("secret", secret),
    ]
    pending = view.pending_rotation
    if pending is not None:
        rows.append(
            (
                "pending",
                f"epoch {pending.epoch}, peer id {pending.public_peer_id} (operation "
                f"{pending.operation_id}); `mobctl supervisor rotate {view.mob_id}` completes it",
            )
        )
    for entry in view.history:
        rows.append(
            (
                "history",
                f"epoch {entry.epoch} {entry.public_key} since {local_time(entry.activated_at)}",
            )
        )
    for label, value in rows:
        say(f"{label:<11} {value}")
