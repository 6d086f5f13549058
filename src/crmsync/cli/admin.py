"""``crmsync admin``: admin-UI users and personal API tokens from the command line.

``create --email E [--role admin|viewer]`` adds a user and prints a generated password once
(or takes the password from ``--password-stdin`` or a hidden prompt with ``--prompt``);
``token --email E --name N`` prints a new personal API token for the admin API once. Both are
recorded in the audit trail.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from crmsync.cli import database, fail, settings_from
from crmsync.errors import CrmsyncError
from crmsync.web.admin.users import AdminUserStore, generate_password

app = typer.Typer(help="Admin-UI users and API tokens.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)


class Role(StrEnum):
    """The role of an admin-UI user: admins change things, viewers only look."""

    admin = "admin"
    viewer = "viewer"


@app.command("create")
def create(
    ctx: typer.Context,
    email: Annotated[str, typer.Option("--email", help="The user's e-mail address.")],
    role: Annotated[Role, typer.Option("--role", help="admin changes, viewer looks.")] = Role.admin,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    prompt: Annotated[bool, typer.Option("--prompt", help="Ask for the password.")] = False,
) -> None:
    """Add a user who signs in to the admin UI; prints a generated password once."""
    if password_stdin and prompt:
        _err.print("give --password-stdin or --prompt, not both")
        raise typer.Exit(2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif prompt:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = generate_password()
    try:
        with database(settings_from(ctx)) as engine:
            user = AdminUserStore(engine).create(email, password, role.value, actor="cli")
    except CrmsyncError as exc:
        raise fail(exc) from None
    _out.print(f"created {user.role} {user.email}", highlight=False)
    if not (password_stdin or prompt):
        _out.print(f"password (shown only now): {password}", highlight=False, soft_wrap=True)


@app.command("token")
def token(
    ctx: typer.Context,
    email: Annotated[str, typer.Option("--email", help="Whose token it is.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "script",
) -> None:
    """Print a new personal API token (Bearer) for the admin API, once."""
    try:
        with database(settings_from(ctx)) as engine:
            users = AdminUserStore(engine)
            user = users.by_email(email)
            if user is None or user.disabled_at is not None:
                _err.print(f"[red]error:[/red] no active user {email}", highlight=False)
                raise typer.Exit(1)
            value = users.create_token(user.id, name, actor="cli")
    except CrmsyncError as exc:
        raise fail(exc) from None
    _out.print(value, highlight=False, soft_wrap=True)
