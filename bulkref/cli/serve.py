"""``bulkref serve``: the click command over ``bulkref.web``."""

from __future__ import annotations

import errno
import os
import secrets
import sys
import webbrowser
from pathlib import Path

import click

from bulkref.cli.main import _target_options, _taxonomy_option


def _has_display() -> bool:
    """Whether a graphical browser can open: on Linux and the BSDs without a display,
    webbrowser would start a text browser in this terminal instead."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class _CannotServe(click.ClickException):
    exit_code = 2


@click.command("serve")
@_target_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address or name to listen on; requests must name it (or loopback). Any other than loopback "
    "requires the access token printed in the URL.",
)
@click.option(
    "--port",
    default=8780,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one.",
)
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
@click.option(
    "--max-upload",
    default=50,
    show_default=True,
    type=click.IntRange(1, 2048),
    metavar="MB",
    help="The largest sheet or mapping file accepted.",
)
@click.option(
    "--team",
    is_flag=True,
    help="Everyone signs in; the person who approves must not be the one who prepared the import.",
)
@click.option(
    "--approvals",
    default=1,
    show_default=True,
    type=click.IntRange(1, 10),
    metavar="N",
    help="With --team: how many people must approve a plan.",
)
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve https with this certificate (PEM; with --keyfile).",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The private key of --certfile (PEM).",
)
@click.option(
    "--public-url",
    metavar="URL",
    help="The address people open when a reverse proxy serves the app (https://bulkref.example.com): "
    "its host is accepted, and sign-in returns there.",
)
@click.option("--tenant", help="Sign-in: the tenant (as bulkref login; else BULKREF_TENANT_ID).")
@click.option("--client-id", help="Sign-in: the app's client id (as bulkref login; else BULKREF_CLIENT_ID).")
@click.option("--authority", help="Sign-in: the authority URL (as bulkref login; else BULKREF_AUTHORITY).")
@_taxonomy_option
def serve(
    api_url: str | None,
    use_sandbox: bool,
    host: str,
    port: int,
    no_browser: bool,
    max_upload: int,
    team: bool,
    approvals: int,
    certfile: Path | None,
    keyfile: Path | None,
    public_url: str | None,
    tenant: str | None,
    client_id: str | None,
    authority: str | None,
) -> None:
    """Run the web app: upload a sheet, check it, review and approve the plan,
    apply it and download the results, in a browser. Imports are kept in your
    data directory. Stop with Ctrl-C (running applies stop cleanly, and resume
    from their page). With --team, colleagues sign in and approve each other's
    imports."""
    import bulkref
    from bulkref.web.app import Settings
    from bulkref.web.security import is_loopback
    from bulkref.web.server import bind, url_of
    from bulkref.web.server import serve as run

    if (certfile is None) != (keyfile is None):
        raise _CannotServe("--certfile and --keyfile go together: give both, or neither.")
    if approvals > 1 and not team:
        raise _CannotServe("--approvals counts people who sign in: give --team too.")
    if public_url is not None:
        public_url = _public_url(public_url)
    try:
        signing = bulkref.BrowserSignIn.from_settings(
            bulkref.data_dir() / "web" / "people", authority=authority, tenant=tenant, client_id=client_id
        )
    except bulkref.BulkrefError as e:
        raise _CannotServe(str(e)) from None
    if team and signing is None:
        raise _CannotServe(
            "--team needs people to sign in: give the app's client id (--client-id or "
            "BULKREF_CLIENT_ID) and its authority or tenant. To rehearse, start `bulkref sandbox "
            "--tls` and use its authority (see docs/team.md)."
        )
    # The same check as every request's Host header: a name that merely starts like
    # loopback (127.0.0.1.nip.io) is a name on the network, and gets the token.
    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    try:
        sock = bind(host, port)
    except OSError as e:
        taken = e.errno == errno.EADDRINUSE
        raise _CannotServe(
            f"port {port} on {host} is in use: give another with --port (0 picks a free one)."
            if taken
            else f"cannot listen on {host}:{port} ({e.strerror or e})."
        ) from None
    bound = int(sock.getsockname()[1])
    settings = Settings(
        api_url=api_url,
        sandbox=use_sandbox,
        access_token=token,
        host=host,
        port=bound,
        max_upload=max_upload * 2**20,
        team=team,
        approvals=approvals,
        secure=certfile is not None or (public_url or "").startswith("https://"),
        public_url=public_url,
        authority=authority,
        tenant=tenant,
        client_id=client_id,
    )
    url = public_url or url_of(host, bound, token, https=certfile is not None)
    try:  # a bad target fails here, before anything is printed
        target = bulkref.describe_target(api_url, use_sandbox)
    except BaseException:
        sock.close()
        raise
    where = "the local sandbox" if target.is_sandbox else f"{target.name} ({target.url})"
    click.echo(
        f"bulkref serve: {where}"
        + (f", a team of people signing in at {signing.authority}" if team and signing else "")
    )
    click.echo(f"Open {url}")
    if token is not None:
        click.echo("Anyone with this URL can use the app: it carries the access token.", err=True)
    click.echo("Stop with Ctrl-C.", err=True)
    if not no_browser and _has_display():
        webbrowser.open(url)
    if public_url is not None and not team:
        click.echo(
            "Behind a proxy, anyone who reaches it can use the app: consider --team, so that "
            "everyone signs in.",
            err=True,
        )
    run(settings, host, sock, certfile=certfile, keyfile=keyfile)


def _public_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise _CannotServe(f"--public-url {text!r} is not an address such as https://bulkref.example.com.")
    if parts.path not in ("", "/"):
        raise _CannotServe(
            f"--public-url {text!r} has a path: the app must be served at the root of its address."
        )
    return f"{parts.scheme}://{parts.netloc}"
