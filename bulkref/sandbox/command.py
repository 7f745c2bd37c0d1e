"""``bulkref sandbox``: the click command (registered by the CLI with ``cli.add_command(sandbox)``)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import click

from bulkref.sandbox.faults import parse_faults
from bulkref.sandbox.options import (
    CLOSED,
    CREATE_STATUS,
    DOCUMENTED_PROFILE,
    FILTERS,
    NEXT_LINK,
    PROFILES,
    SOLUTION_AREAS,
    THROTTLE_SHAPE,
    SandboxOptions,
    is_loopback,
)


class _CannotServe(click.ClickException):
    exit_code = 2  # the contract: the command could not do its job at all


@click.command("sandbox")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback needs --allow-remote.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other than loopback: other machines can then read and write the referrals.",
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
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default="default",
    show_default=True,
    help="documented: as strict as the documentation (--filters, --create-status, --throttle-shape "
    "and --next-link documented, --closed frozen, --solution-areas any, no MS-RequestId replay "
    "unless --replay-request-ids; --list-lag stays separate).",
)
@click.option(
    "--filters",
    type=click.Choice(FILTERS),
    default="any",
    show_default=True,
    help="documented: $filter takes only the properties, 'and' and 'eq' the listing page shows "
    "(anything else is 400), as the real service may; any: every filter the sandbox implements.",
)
@click.option(
    "--list-lag",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="Writes show in listings and filters only after this long (GET by id sees them at once): "
    "nothing documents how soon a new referral can be found.",
)
@click.option(
    "--create-status",
    type=click.Choice(CREATE_STATUS),
    default="documented",
    show_default=True,
    help="documented: a new referral of the partner's own comes back Active/Accepted, as the "
    "documentation's create example does; as-sent: it keeps the status it was sent with.",
)
@click.option(
    "--throttle-shape",
    type=click.Choice(THROTTLE_SHAPE),
    default="sandbox",
    show_default=True,
    help="documented: 429s carry the throttling page's body ({statusCode, message}) and Retry-After "
    "only; sandbox: the error object plus x-ms-retry-after-ms.",
)
@click.option(
    "--next-link",
    type=click.Choice(NEXT_LINK),
    default="sandbox",
    show_default=True,
    help="documented: @odata.nextLink as the listing example shows it, http://HOST/v1.0/referrals"
    "?$skiptoken=... (another scheme and path); sandbox: the collection's own URL.",
)
@click.option(
    "--replay-request-ids/--no-replay-request-ids",
    default=None,
    help="A POST, PUT or PATCH repeating an MS-RequestId within 15 minutes with the same body gets "
    "the first answer instead of writing again; with another body, 400 requestIdReused. Nothing "
    "documents that the service does this. Default: on, off under --profile documented.",
)
@click.option(
    "--closed",
    type=click.Choice(CLOSED),
    default="frozen",
    show_default=True,
    help="frozen: every PUT and PATCH of a Closed referral is 400; open: it may change, its status "
    "only to Closed with another closed substatus (the documentation's transition table).",
)
@click.option(
    "--solution-areas",
    type=click.Choice(SOLUTION_AREAS),
    default="fy24",
    show_default=True,
    help="fy24: Services co-sell solutionArea/solutionPlay must come from the FY24 table; any: "
    "any value (the FY26 list is not published). --profile documented sets any.",
)
def sandbox(
    host: str,
    allow_remote: bool,
    profile: str,
    filters: str,
    list_lag: float,
    create_status: str,
    throttle_shape: str,
    next_link: str,
    replay_request_ids: bool | None,
    closed: str,
    solution_areas: str,
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
    if profile == "documented":
        context = click.get_current_context()
        chosen = {"filters": filters, "create_status": create_status}
        chosen |= {"throttle_shape": throttle_shape, "next_link": next_link}
        chosen |= {"closed": closed, "solution_areas": solution_areas}
        for name, value in chosen.items():
            explicit = context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
            if explicit and value != DOCUMENTED_PROFILE[name]:
                flag = "--" + name.replace("_", "-")
                raise click.UsageError(
                    f"--profile documented sets {flag} {DOCUMENTED_PROFILE[name]}; leave out {flag} {value}."
                )
    if not is_loopback(host):
        if not allow_remote:
            raise _CannotServe(
                f"{host} is not a loopback address, so any machine that can reach this one could read and "
                "write the sandbox's referrals: add --allow-remote if that is what you want."
            )
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
        allow_remote=allow_remote,
        profile=profile,
        filters=filters,
        list_lag=list_lag,
        create_status=create_status,
        throttle_shape=throttle_shape,
        next_link=next_link,
        replay_request_ids=replay_request_ids,
        closed=closed,
        solution_areas=solution_areas,
    )
    # Here, not at the top: `bulkref sandbox --help` needs neither the server nor TLS.
    from bulkref.sandbox.server import serve
    from bulkref.sandbox.tls import LoopbackCertificate

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
