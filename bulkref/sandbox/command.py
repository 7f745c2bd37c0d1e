"""``bulkref sandbox``: the click command (registered by the CLI with ``cli.add_command(sandbox)``)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import click

from bulkref.sandbox.faults import parse_faults
from bulkref.sandbox.options import SandboxOptions, is_loopback
from bulkref.sandbox.server import serve
from bulkref.sandbox.tls import LoopbackCertificate


class _CannotServe(click.ClickException):
    exit_code = 2  # the contract: the command could not do its job at all


@click.command("sandbox")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback lets other machines use the sandbox.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one (printed on start).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file for the state, so that it survives a restart. Default: in memory.",
)
@click.option(
    "--seed", type=int, help="Seed for the fault draws: the same seed and requests give the same faults."
)
@click.option(
    "--faults",
    default="",
    metavar="SPEC",
    help="Faults to inject, probabilities per request, e.g. "
    "'429=0.1,503=0.05,500=0.02,reset=0.02,commit-then-500=0.02,"
    "commit-then-reset=0.02,latency=20ms' "
    "(commit-then-* store the write, then lose the answer).",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="RPS",
    help="Requests per second per tenant; beyond it, 429 with an honest Retry-After.",
)
@click.option(
    "--page-size",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Referrals per page of a listing (@odata.nextLink for the rest).",
)
@click.option(
    "--tls",
    is_flag=True,
    help="Serve https with a throwaway certificate authority (printed on start): needed to sign "
    "in against the sandbox, as MSAL talks to https authorities only.",
)
@click.option(
    "--require-issued-tokens",
    is_flag=True,
    help="Accept only unexpired tokens this sandbox issued (default: any bearer token).",
)
@click.option(
    "--token-lifetime",
    default=3600,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Lifetime of the access tokens the sandbox issues.",
)
def sandbox(
    host: str,
    port: int,
    db: Path | None,
    seed: int | None,
    faults: str,
    rate_limit: float | None,
    page_size: int,
    tls: bool,
    require_issued_tokens: bool,
    token_lifetime: int,
) -> None:
    """Run a local Partner Center Referrals API at http://HOST:PORT/v1.0/engagements/referrals .

    Any bearer token is accepted, unless --require-issued-tokens. It is also an
    identity provider for `bulkref login` rehearsals (with --tls): authority
    https://HOST:PORT/common, user ann@contoso.example / sandbox-password,
    client id bulkref-sandbox (secret sandbox-client-secret); device codes are
    approved at once. Admin routes (not part of the API) live under
    /_sandbox/: reset, referrals (seed), stats, faults, health, identity, device.
    Stop with Ctrl-C.
    """
    try:
        parse_faults(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--faults'") from None
    if not is_loopback(host):
        click.echo(
            f"Warning: listening on {host}, not loopback: anyone who can reach this machine "
            "can read and write the sandbox's referrals.",
            err=True,
        )
    options = SandboxOptions(
        host=host,
        port=port,
        db=db,
        seed=seed,
        faults=faults,
        rate_limit=rate_limit,
        page_size=page_size,
        tls=tls,
        require_issued_tokens=require_issued_tokens,
        token_lifetime=token_lifetime,
    )
    certificate = LoopbackCertificate.create() if tls else None

    def ready(url: str, state: str) -> None:
        click.echo(f"Sandbox listening on {url} (state: {state})")
        if certificate is not None:
            click.echo(
                f"TLS certificate authority: {certificate.ca_file} (for bulkref: "
                f"export SSL_CERT_FILE={certificate.ca_file})"
            )

    try:
        serve(options, ready, certificate)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _CannotServe(f"Port {port} on {host} is in use; pick another with --port.") from None
        raise _CannotServe(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    except sqlite3.Error as exc:
        raise _CannotServe(f"Cannot use {db} as the sandbox database: {exc}.") from None
    finally:
        if certificate is not None:
            certificate.remove()
    click.echo("Sandbox stopped.", err=True)
