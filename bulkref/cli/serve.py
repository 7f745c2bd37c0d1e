"""``bulkref serve``: the click command over ``bulkref.web``."""

from __future__ import annotations

import errno
import os
import secrets
import sys
import webbrowser

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
@_taxonomy_option
def serve(
    api_url: str | None, use_sandbox: bool, host: str, port: int, no_browser: bool, max_upload: int
) -> None:
    """Run the web app: upload a sheet, check it, review and approve the plan,
    apply it and download the results, in a browser. Imports are kept in your
    data directory. Stop with Ctrl-C (running applies stop cleanly, and resume
    from their page)."""
    import bulkref
    from bulkref.web.app import Settings
    from bulkref.web.security import is_loopback
    from bulkref.web.server import bind, url_of
    from bulkref.web.server import serve as run

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
    )
    url = url_of(host, bound, token)
    try:  # a bad target fails here, before anything is printed
        target = bulkref.describe_target(api_url, use_sandbox)
    except BaseException:
        sock.close()
        raise
    where = "the local sandbox" if target.is_sandbox else f"{target.name} ({target.url})"
    click.echo(f"bulkref serve: {where}")
    click.echo(f"Open {url}")
    if token is not None:
        click.echo("Anyone with this URL can use the app: it carries the access token.", err=True)
    click.echo("Stop with Ctrl-C.", err=True)
    if not no_browser and _has_display():
        webbrowser.open(url)
    run(settings, host, sock)
