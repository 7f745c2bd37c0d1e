"""``bulkref login``, ``logout`` and ``whoami``: the click layer over ``bulkref.api.signin``.

Registered by the CLI with ``cli.add_command(login)`` and so on, whose group
turns a ``BulkrefError`` into one sentence on stderr and exit 2. Secrets come
from the environment or a hidden prompt and are never echoed; the device code
message and warnings go to stderr (for the person), the result to stdout.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from bulkref.api import settings
from bulkref.errors import BadSettings, NotSignedIn

if TYPE_CHECKING:
    from bulkref.api.signin import Credentials

APP_ONLY_WARNING = (
    "app-only (client credentials) tokens carry no user, and Partner Center's Referrals API "
    "supports user access only: it may refuse them. Sign in as a user with --username or "
    "--device-code if it does."
)

# Partner Center enforces MFA on every App+User call from 1 April 2026: a
# password alone can no longer get a token for most accounts.
PASSWORD_WARNING = (
    "the password grant cannot answer MFA, which Partner Center enforces for App+User sign-in "
    "since 1 April 2026: it fails for most accounts. Use `bulkref login` (device code) instead; "
    "keep --username for accounts your administrator exempted."
)


def _warn(message: str) -> None:
    click.echo(f"bulkref: warning: {message}", err=True)


def _tell(message: str) -> None:
    click.echo(message, err=True)


def _password(credentials: Credentials) -> str | None:
    from bulkref.api import signin as auth

    if credentials.grant is not auth.Grant.PASSWORD:
        return None
    password = os.environ.get(settings.ENV_PASSWORD)
    if password:
        return password
    try:
        return str(click.prompt(f"Password for {credentials.username}", hide_input=True, err=True))
    except click.Abort:  # no terminal to ask on (end of input): say what to do instead
        raise BadSettings(
            f"No password for {credentials.username}: set {settings.ENV_PASSWORD}, run "
            "`bulkref login` in a terminal, or use --device-code."
        ) from None


@click.command("login")
@click.option(
    "--device-code",
    is_flag=True,
    help="Sign in in a browser, on any device, with a code (works with MFA). The default "
    "without a user name or client secret.",
)
@click.option(
    "--username",
    "-u",
    metavar="USER",
    help=f"Sign in with this user name and a password ({settings.ENV_PASSWORD}, else a prompt); "
    f"no MFA, so it fails where MFA is enforced (most tenants since April 2026). "
    f"Default: {settings.ENV_USERNAME}.",
)
@click.option(
    "--tenant",
    metavar="TENANT",
    help=f"Tenant id or domain (default: {settings.ENV_TENANT_ID}, else {settings.DEFAULT_TENANT}).",
)
@click.option(
    "--client-id",
    metavar="ID",
    help=f"Application id of the app registered for Partner Center (default: {settings.ENV_CLIENT_ID}).",
)
@click.option(
    "--authority",
    metavar="URL",
    help=f"The sign-in service, https://HOST[:PORT]/TENANT (default: {settings.ENV_AUTHORITY}, else "
    f"{settings.DEFAULT_AUTHORITY_HOST}/TENANT). To rehearse: a sandbox started with --tls, "
    "e.g. https://127.0.0.1:8765/common.",
)
def login(
    device_code: bool, username: str | None, tenant: str | None, client_id: str | None, authority: str | None
) -> None:
    """Sign in to Partner Center; later commands use the token and refresh it.

    With BULKREF_CLIENT_SECRET set the app signs in with its secret too, and
    without a user name it signs in alone (client credentials, app-only).
    Secrets are read from the environment or a hidden prompt, never stored."""
    from bulkref.api import signin as auth

    env = os.environ
    credentials = auth.login_credentials(
        env,
        authority=authority,
        tenant=tenant,
        client_id=client_id,
        username=username,
        device_code=device_code,
    )
    secret = env.get(settings.ENV_CLIENT_SECRET) if credentials.confidential else None
    secrets = auth.Secrets(password=_password(credentials), client_secret=secret)
    if credentials.app_only:
        _warn(APP_ONLY_WARNING)
    elif credentials.grant is auth.Grant.PASSWORD:
        _warn(PASSWORD_WARNING)
    signed_in = auth.login(credentials, secrets, env=env, show=_tell, warn=_warn)
    who = f"the app {credentials.client_id}" if credentials.app_only else signed_in.username
    click.echo(
        f"Signed in as {who} (tenant {signed_in.tenant_id or credentials.tenant}) at {credentials.authority}."
    )


@click.command("logout")
def logout() -> None:
    """Forget the sign-in: the tokens in the cache and the recorded account."""
    from bulkref.api import signin as auth

    record = auth.logout(os.environ, warn=_warn)
    if record is None:
        click.echo("Not signed in: nothing to forget.")
    else:
        click.echo(f"Signed out {record.credentials.who()} at {record.credentials.authority}.")


@click.command("whoami")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="text for people, json for scripts.",
)
def whoami(fmt: str) -> None:
    """Show the signed-in account: user, tenant, authority, token expiry (never the token)."""
    from bulkref.api import signin as auth

    overridden = bool(os.environ.get(settings.ENV_ACCESS_TOKEN, "").strip())
    try:
        signed_in = auth.whoami(os.environ, warn=_warn)
    except NotSignedIn:
        if not overridden:
            raise
        click.echo(f"Not signed in; commands use {settings.ENV_ACCESS_TOKEN} from the environment.")
        return
    if fmt == "json":
        click.echo(json.dumps({**signed_in.as_json(), "accessTokenFromEnvironment": overridden}, indent=2))
        return
    click.echo("\n".join(signed_in.lines()))
    if overridden:
        click.echo(f"Note: {settings.ENV_ACCESS_TOKEN} is set, and commands use it instead of this sign-in.")
