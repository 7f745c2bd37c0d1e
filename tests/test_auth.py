"""bulkref login / logout / whoami and the MSAL token source, end to end against the
sandbox as identity provider (https on loopback, its own throwaway CA)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import jwt
import pytest
from click.testing import CliRunner, Result
from helpers import RunningSandbox, referral_body

from bulkref.api import signin as auth
from bulkref.api.client import ReferralsClient, RetryPolicy, Unauthenticated
from bulkref.api.target import NoCredentials, Target
from bulkref.cli.main import _Group
from bulkref.cli.signin import login, logout, whoami
from bulkref.sandbox.identity import Identity, OAuthError
from bulkref.sandbox.options import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_TENANT_ID,
    SANDBOX_USER,
    SandboxOptions,
)

FAST = RetryPolicy(attempts=1, base=0.01, cap=0.02)
AUTH_ENV = (
    "BULKREF_ACCESS_TOKEN",
    "BULKREF_AUTHORITY",
    "BULKREF_TENANT_ID",
    "BULKREF_CLIENT_ID",
    "BULKREF_CLIENT_SECRET",
    "BULKREF_USERNAME",
    "BULKREF_PASSWORD",
    "BULKREF_API_URL",
)


# -- helpers -----------------------------------------------------------------------------------


@click.group(cls=_Group)
def cli() -> None:
    """The commands as bulkref's CLI registers them (its group gives the exit codes)."""


for _command in (login, logout, whoami):
    cli.add_command(_command)


class Idp:
    """A TLS sandbox that issues tokens, and the environment that points bulkref at it."""

    def __init__(
        self, running: RunningSandbox, home: Path, monkeypatch: pytest.MonkeyPatch, tenant: str = "common"
    ) -> None:
        self.running = running
        self.home = home
        self.ca_file = str(running.server.ca_file)
        self.authority = f"{running.root}/{tenant}"
        self.http = httpx.Client(verify=ssl.create_default_context(cafile=self.ca_file), timeout=10)
        for name in AUTH_ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("BULKREF_HOME", str(home))
        monkeypatch.setenv("SSL_CERT_FILE", self.ca_file)
        monkeypatch.setenv("BULKREF_AUTHORITY", self.authority)
        monkeypatch.setenv("BULKREF_CLIENT_ID", SANDBOX_CLIENT_ID)

    @property
    def url(self) -> str:
        return self.running.url

    def _admin_headers(self) -> dict[str, str]:
        # Under require_issued_tokens the admin routes take an issued token too.
        return {"Authorization": f"Bearer {self.running.server.admin_token}"}

    def identity(self) -> dict[str, Any]:
        answer = self.http.get(f"{self.running.root}/_sandbox/identity", headers=self._admin_headers())
        return answer.json()  # type: ignore[no-any-return]

    def admin(self, path: str, body: Any = None) -> httpx.Response:
        response = self.http.post(
            f"{self.running.root}/_sandbox/{path}", json=body, headers=self._admin_headers()
        )
        response.raise_for_status()
        return response

    def transport(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=self.ca_file))

    def list_ids(self, token: Callable[[], str] | str) -> list[str]:
        async def go() -> list[str]:
            async with ReferralsClient(self.url, token, transport=self.transport(), retry=FAST) as api:
                return [r["id"] async for r in api.list()]

        return asyncio.run(go())

    def raw_status(self, token: str) -> int:
        return self.http.get(self.url, headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.fixture
def start_idp(
    sandbox_factory: Callable[..., RunningSandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Idp]]:
    started: list[Idp] = []

    def start(tenant: str = "common", **options: Any) -> Idp:
        options.setdefault("require_issued_tokens", True)
        idp = Idp(sandbox_factory(tls=True, **options), tmp_path / "home", monkeypatch, tenant)
        started.append(idp)
        return idp

    yield start
    for idp in started:
        idp.http.close()


@pytest.fixture
def idp(start_idp: Callable[..., Idp]) -> Idp:
    return start_idp()


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=stdin)


def password_login(password: str = SANDBOX_PASSWORD) -> Result:
    return run("login", "--username", SANDBOX_USER, env={"BULKREF_PASSWORD": password})


def files_text(folder: Path) -> dict[str, str]:
    return {p.name: p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()}


def assert_nowhere(secrets: list[str], outputs: list[str], folder: Path, *, cache_too: bool) -> None:
    """None of ``secrets`` in the outputs or the data directory's files (the token cache
    holds tokens by design: it is searched only when ``cache_too``)."""
    files = files_text(folder)
    for secret in secrets:
        assert secret
        for text in outputs:
            assert secret not in text
        for name, text in files.items():
            if cache_too or not name.startswith(auth.CACHE_FILE):
                assert secret not in text, f"a secret in {name}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def cache_kind() -> str:
    # msal-extensions is a required dependency: its cache is the only one.
    return "msal-extensions"


# -- the path a person takes ------------------------------------------------------------------


def test_password_login_then_whoami_then_the_api_takes_the_token(idp: Idp, cache_kind: str) -> None:
    seeded = idp.admin("referrals", referral_body()).json()["id"]

    signed_in = password_login()
    assert signed_in.exit_code == 0, signed_in.output
    assert signed_in.stdout == (
        f"Signed in as {SANDBOX_USER} (tenant {SANDBOX_TENANT_ID}) at {idp.authority}.\n"
    )

    shown = run("whoami")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Signed in as {SANDBOX_USER}"
    assert f"tenant:    {SANDBOX_TENANT_ID}" in shown.stdout and f"authority: {idp.authority}" in shown.stdout
    assert "token:     valid until " in shown.stdout

    target = Target(idp.url)  # no BULKREF_ACCESS_TOKEN: the login's token source

    async def ids() -> list[str]:
        async with target.client(transport=idp.transport(), retry=FAST) as api:
            return [r["id"] async for r in api.list()]

    assert asyncio.run(ids()) == [seeded]
    token = target.token()
    assert auth.stored_token_source(os.environ)() == token  # another process would find the same one
    assert_nowhere([token], [signed_in.output, shown.output], idp.home, cache_too=False)
    assert_nowhere([SANDBOX_PASSWORD], [signed_in.output, shown.output], idp.home, cache_too=True)
    assert idp.identity()["grants"]["password"] == 1


def test_a_token_the_sandbox_did_not_issue_is_refused_as_unauthenticated(
    start_idp: Callable[..., Idp],
) -> None:
    idp = start_idp()
    forged = jwt.encode(
        {
            "aud": auth.RESOURCE,
            "tid": SANDBOX_TENANT_ID,
            "iat": int(time.time()),
            "exp": int(time.time()) + 3600,
            "upn": SANDBOX_USER,
        },
        "not-the-sandbox-key" * 2,
        algorithm="HS256",
    )
    for token in (forged, "opaque-token"):
        with pytest.raises(Unauthenticated) as caught:
            idp.list_ids(token)
        assert caught.value.exit_code == 2 and caught.value.status == 401
        assert "credentials are missing, invalid or expired" in str(caught.value)
        assert token not in str(caught.value)
    # Without require_issued_tokens a sandbox takes any bearer token, as before.
    assert start_idp(require_issued_tokens=False).list_ids(forged) == []


def test_an_issued_token_for_another_resource_is_refused(idp: Idp) -> None:
    answer = idp.http.post(
        f"{idp.authority}/oauth2/v2.0/token",
        data={
            "grant_type": "password",
            "client_id": SANDBOX_CLIENT_ID,
            "username": SANDBOX_USER,
            "password": SANDBOX_PASSWORD,
            "scope": "https://graph.microsoft.com/.default openid",
        },
    )
    assert answer.status_code == 200
    assert idp.raw_status(answer.json()["access_token"]) == 401


def test_the_token_is_refreshed_silently_when_it_expires_mid_run(start_idp: Callable[..., Idp]) -> None:
    idp = start_idp(token_lifetime=1)
    assert password_login().exit_code == 0
    source = auth.stored_token_source(os.environ)
    assert source is not None

    async def calls() -> tuple[str, str, int, int]:
        async with ReferralsClient(idp.url, source, transport=idp.transport(), retry=FAST) as api:
            assert [r async for r in api.list()] == []
            first, refreshes = source(), idp.identity()["grants"].get("refresh_token", 0)
            assert [r async for r in api.list()] == []  # still fresh: no new sign-in request
            assert idp.identity()["grants"].get("refresh_token", 0) == refreshes
            deadline = time.monotonic() + 5
            while idp.raw_status(first) != 401:  # until the sandbox calls the first token expired
                assert time.monotonic() < deadline, "the token never expired"
                await asyncio.sleep(0.1)
            assert [r async for r in api.list()] == []  # the same run goes on, with a new token
            return first, source(), refreshes, idp.identity()["grants"]["refresh_token"]

    first, second, before, after = asyncio.run(calls())
    assert second != first and after == before + 1


def test_a_refused_refresh_is_one_sentence_and_exit_2(start_idp: Callable[..., Idp]) -> None:
    idp = start_idp(token_lifetime=60)  # under MSAL's 5 minutes: it refreshes rather than use it
    assert password_login().exit_code == 0
    idp.admin("identity/revoke")  # an administrator revoked the sessions
    source = auth.stored_token_source(os.environ)
    assert source is not None
    with pytest.raises(auth.NotSignedIn) as caught:
        source()
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert message.startswith(
        f"The sign-in of {SANDBOX_USER} at {idp.authority} has expired or was revoked "
        "(invalid_grant: AADSTS9002313"
    )
    assert message.endswith("run `bulkref login` again.")


# -- refusals -------------------------------------------------------------------------------------


def test_a_wrong_password_ends_login_with_exit_2_and_one_sentence(idp: Idp) -> None:
    wrong = "Wrong-Passw0rd!"
    refused = password_login(wrong)
    assert refused.exit_code == 2
    assert refused.stdout == ""
    warning, _, refusal = refused.stderr.partition("\n")
    assert warning.startswith("bulkref: warning: the password grant cannot answer MFA")
    assert refusal == (
        f"bulkref: The sign-in of {SANDBOX_USER} at {idp.authority} was refused "
        "(invalid_grant: AADSTS50126: Error validating credentials due to invalid "
        "username or password).\n"
    )
    assert "Traceback" not in refused.output and wrong not in refused.output
    assert not (idp.home / auth.CONFIG_FILE).exists()
    assert_nowhere([wrong], [refused.output], idp.home, cache_too=True)
    assert idp.identity()["refused"] == {"password/invalid_grant": 1}


def test_the_password_is_prompted_for_without_echo(idp: Idp) -> None:
    prompted = run("login", "--username", SANDBOX_USER, stdin=SANDBOX_PASSWORD + "\n")
    assert prompted.exit_code == 0, prompted.output
    assert f"Password for {SANDBOX_USER}" in prompted.stderr
    assert SANDBOX_PASSWORD not in prompted.output
    no_terminal = run("login", "--username", SANDBOX_USER, stdin="")
    assert no_terminal.exit_code == 2
    assert "No password for ann@contoso.example: set BULKREF_PASSWORD" in no_terminal.stderr


def test_without_credentials_a_real_target_says_to_log_in(idp: Idp) -> None:
    with pytest.raises(NoCredentials) as caught:
        Target(idp.url).token()
    assert "run `bulkref login`" in str(caught.value)
    assert run("whoami").stderr == "bulkref: Not signed in: run `bulkref login`.\n"


def test_an_http_authority_and_an_untrusted_certificate_are_explained(
    idp: Idp, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = run("login", "--device-code", "--authority", idp.authority.replace("https:", "http:"))
    assert http.exit_code == 2 and "MSAL signs in over https only" in http.stderr and "--tls" in http.stderr
    import certifi

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # the public CAs: not the sandbox's
    untrusted = password_login()
    assert untrusted.exit_code == 2 and "Traceback" not in untrusted.output
    assert "its certificate is not trusted" in untrusted.stderr and "SSL_CERT_FILE" in untrusted.stderr


def test_an_unknown_tenant_is_explained(idp: Idp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULKREF_AUTHORITY", idp.running.root + "/fabrikam.example")
    refused = password_login()
    assert refused.exit_code == 2
    assert "gave no usable OpenID configuration: check the tenant" in refused.stderr


# -- the other grants -------------------------------------------------------------------------------


def test_client_credentials_sign_in_the_app_with_a_warning(
    start_idp: Callable[..., Idp], monkeypatch: pytest.MonkeyPatch
) -> None:
    idp = start_idp(tenant=SANDBOX_TENANT_ID)
    monkeypatch.setenv("BULKREF_CLIENT_SECRET", SANDBOX_CLIENT_SECRET)
    signed_in = run("login")
    assert signed_in.exit_code == 0, signed_in.output
    assert "warning: app-only (client credentials) tokens carry no user" in signed_in.stderr
    assert (
        signed_in.stdout == f"Signed in as the app {SANDBOX_CLIENT_ID} (tenant {SANDBOX_TENANT_ID}) at "
        f"{idp.authority}.\n"
    )
    shown = run("whoami")
    assert shown.stdout.splitlines()[0] == f"Signed in as app {SANDBOX_CLIENT_ID} (app-only)"
    source = auth.stored_token_source(os.environ)
    assert source is not None
    assert idp.list_ids(source) == []
    assert idp.identity()["grants"]["client_credentials"] == 1
    assert_nowhere([SANDBOX_CLIENT_SECRET], [signed_in.output, shown.output], idp.home, cache_too=True)
    assert_nowhere([source()], [signed_in.output, shown.output], idp.home, cache_too=False)

    monkeypatch.delenv("BULKREF_CLIENT_SECRET")  # later commands need the secret again
    with pytest.raises(auth.NotSignedIn, match="BULKREF_CLIENT_SECRET is not set"):
        auth.stored_token_source(os.environ)()  # type: ignore[misc]


def test_client_credentials_need_a_tenant(idp: Idp) -> None:
    refused = run("login", env={"BULKREF_CLIENT_SECRET": "x"})
    assert refused.exit_code == 2 and "An app signs in to its own tenant" in refused.stderr


def test_a_wrong_client_secret_is_refused(start_idp: Callable[..., Idp]) -> None:
    start_idp(tenant=SANDBOX_TENANT_ID)
    refused = run("login", env={"BULKREF_CLIENT_SECRET": "Not-The-Secret"})
    assert refused.exit_code == 2
    assert "(invalid_client: AADSTS7000215: Invalid client secret provided" in refused.stderr
    assert "Not-The-Secret" not in refused.output


def test_device_code_login_shows_the_code_and_completes(idp: Idp) -> None:
    signed_in = run("login", "--device-code")
    assert signed_in.exit_code == 0, signed_in.output
    assert signed_in.stderr.startswith(
        f"To sign in, use a web browser to open the page {idp.running.root}"
        "/_sandbox/device and enter the code "
    )
    assert signed_in.stdout.startswith(f"Signed in as {SANDBOX_USER} ")
    assert run("whoami").stdout.splitlines()[4] == "  sign-in:   device code"
    assert idp.identity()["grants"]["device_code"] == 1


def test_a_device_code_waits_for_its_approval(start_idp: Callable[..., Idp]) -> None:
    idp = start_idp(device_code_user=None)
    credentials = auth.login_credentials(os.environ, device_code=True)
    said: list[str] = []

    def approve_soon(message: str) -> None:  # the person reads the code, then signs in elsewhere
        said.append(message)
        code = message.split("enter the code ")[1].split()[0]
        threading.Timer(0.3, idp.admin, ("device", {"user_code": code, "username": SANDBOX_USER})).start()

    signed_in = auth.login(credentials, auth.Secrets(), show=approve_soon)
    assert signed_in.username == SANDBOX_USER and len(said) == 1
    assert idp.identity()["pendingDeviceCodes"] == []

    def decline(message: str) -> None:
        code = message.split("enter the code ")[1].split()[0]
        idp.admin("device", {"user_code": code, "approve": False})

    with pytest.raises(auth.SignInRefused, match=r"was refused \(authorization_declined"):
        auth.login(credentials, auth.Secrets(), show=decline)


# -- files ---------------------------------------------------------------------------------------------


def test_logout_forgets_the_sign_in(idp: Idp) -> None:
    assert password_login().exit_code == 0
    assert (idp.home / auth.CACHE_FILE).exists() and (idp.home / auth.CONFIG_FILE).exists()
    out = run("logout")
    assert out.exit_code == 0 and out.stdout == f"Signed out {SANDBOX_USER} at {idp.authority}.\n"
    assert not (idp.home / auth.CACHE_FILE).exists() and not (idp.home / auth.CONFIG_FILE).exists()
    assert run("whoami").exit_code == 2
    with pytest.raises(NoCredentials):
        Target(idp.url).token()
    assert run("logout").stdout == "Not signed in: nothing to forget.\n"


def test_the_cache_and_the_record_are_0600_whatever_the_umask(idp: Idp, cache_kind: str) -> None:
    old = os.umask(0)  # the loosest umask: files must still be private
    try:
        assert password_login().exit_code == 0
    finally:
        os.umask(old)
    cache, record = idp.home / auth.CACHE_FILE, idp.home / auth.CONFIG_FILE
    assert mode(cache) == 0o600 and mode(record) == 0o600
    assert json.loads(record.read_text()) == {
        "version": 1,
        "authority": idp.authority,
        "client_id": SANDBOX_CLIENT_ID,
        "grant": "password",
        "username": SANDBOX_USER,
        "confidential": False,
        "tenant_id": SANDBOX_TENANT_ID,
        "home_account_id": json.loads(record.read_text())["home_account_id"],
    }

    cache.chmod(0o644)  # someone loosened it
    shown = run("whoami")
    assert shown.exit_code == 0
    assert (
        f"bulkref: warning: {cache} could be read by other users (mode 0644); it is 0600 now." in shown.stderr
    )
    assert mode(cache) == 0o600
    source = auth.stored_token_source(os.environ)
    assert source is not None and idp.list_ids(source) == []
    assert mode(cache) == 0o600  # still, after a refresh rewrote it


def test_nothing_secret_reaches_logs(idp: Idp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # MSAL's and bulkref's loggers, at their most talkative
    assert password_login().exit_code == 0
    source = auth.stored_token_source(os.environ)
    assert source is not None
    assert idp.list_ids(source) == []
    token = source()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # MSAL did log
    assert SANDBOX_PASSWORD not in logged and token not in logged
    cache = json.loads((idp.home / auth.CACHE_FILE).read_text())
    refresh = next(iter(cache["RefreshToken"].values()))["secret"]
    assert refresh not in logged


@pytest.mark.slow
def test_the_cli_in_a_subprocess(idp: Idp, tmp_path: Path) -> None:
    # The registration the CLI makes; then the commands as a user runs them.
    script = (
        "import sys; from bulkref import cli; from bulkref.cli.signin import login, logout, whoami; "
        "[cli.cli.add_command(c) for c in (login, logout, whoami)]; sys.argv[0] = 'bulkref'; "
        "cli.main()"
    )
    env = {**os.environ, "BULKREF_PASSWORD": SANDBOX_PASSWORD}

    def bulkref(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    signed_in = bulkref("login", "--username", SANDBOX_USER)
    assert signed_in.returncode == 0, signed_in.stderr
    shown = bulkref("whoami")
    assert shown.returncode == 0 and SANDBOX_USER in shown.stdout
    env["BULKREF_PASSWORD"] = "Wrong-Passw0rd!"
    refused = bulkref("login", "--username", SANDBOX_USER)
    # The MFA warning, then one sentence.
    assert refused.returncode == 2 and refused.stderr.count("\n") == 2 and "Traceback" not in refused.stderr
    for out in (signed_in, shown, refused):
        assert SANDBOX_PASSWORD not in out.stdout + out.stderr and "Wrong-Passw0rd!" not in out.stderr


# -- settings ---------------------------------------------------------------------------------------------


def test_which_grant_the_flags_and_the_environment_choose() -> None:
    env = {"BULKREF_CLIENT_ID": "app"}
    assert auth.login_credentials(env).grant is auth.Grant.DEVICE_CODE
    assert auth.login_credentials(env).authority == "https://login.microsoftonline.com/organizations"
    user = auth.login_credentials(
        {**env, "BULKREF_USERNAME": "u@x.example", "BULKREF_TENANT_ID": "x.example"}
    )
    assert (user.grant, user.username, user.authority, user.confidential) == (
        auth.Grant.PASSWORD,
        "u@x.example",
        "https://login.microsoftonline.com/x.example",
        False,
    )
    app_user = auth.login_credentials({**env, "BULKREF_CLIENT_SECRET": "s"}, username="u@x.example")
    assert (app_user.grant, app_user.confidential) == (auth.Grant.PASSWORD, True)
    app = auth.login_credentials({**env, "BULKREF_CLIENT_SECRET": "s", "BULKREF_TENANT_ID": "t"})
    assert (app.grant, app.tenant) == (auth.Grant.CLIENT_CREDENTIALS, "t")
    assert (
        auth.login_credentials({**env, "BULKREF_USERNAME": "u"}, device_code=True).grant
        is auth.Grant.DEVICE_CODE
    )
    assert (
        auth.login_credentials(env, authority="https://127.0.0.1:8765").authority
        == "https://127.0.0.1:8765/organizations"
    )
    with pytest.raises(auth.BadSettings, match="two ways to sign in"):
        auth.login_credentials(env, username="u", device_code=True)
    with pytest.raises(auth.BadSettings, match="No client id"):
        auth.login_credentials({})
    with pytest.raises(auth.BadSettings, match="give the tenant once"):
        auth.login_credentials(env, authority="https://127.0.0.1:8765/common", tenant="contoso")


def test_the_http_client_keeps_the_authority_port() -> None:
    http = auth.AuthorityHttp("https://127.0.0.1:8443/common", True)
    assert (
        http.with_port("https://127.0.0.1/common/userrealm/a@b?api-version=1.0")
        == "https://127.0.0.1:8443/common/userrealm/a@b?api-version=1.0"
    )
    assert http.with_port("https://login.microsoftonline.com/x") == "https://login.microsoftonline.com/x"
    assert (
        auth.AuthorityHttp("https://login.microsoftonline.com/common", True).with_port(
            "https://login.microsoftonline.com/common/userrealm/a"
        )
        == "https://login.microsoftonline.com/common/userrealm/a"
    )
    http.close()


# -- the identity provider itself -------------------------------------------------------------------------


def test_an_expired_refresh_token_is_invalid_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    identity = Identity(SandboxOptions(refresh_token_lifetime=60))
    form = {
        "grant_type": "password",
        "client_id": SANDBOX_CLIENT_ID,
        "username": SANDBOX_USER,
        "password": SANDBOX_PASSWORD,
        "scope": f"{auth.USER_SCOPE} openid offline_access",
    }
    issued = identity.token("https://idp", "common", form)
    assert {"access_token", "refresh_token", "id_token", "client_info"} <= issued.keys()
    assert identity.verify(issued["access_token"]) == SANDBOX_TENANT_ID
    refresh = {
        "grant_type": "refresh_token",
        "client_id": SANDBOX_CLIENT_ID,
        "refresh_token": issued["refresh_token"],
        "scope": auth.USER_SCOPE,
    }
    later = time.time() + 61
    monkeypatch.setattr("bulkref.sandbox.identity.time.time", lambda: later)
    with pytest.raises(OAuthError) as caught:
        identity.token("https://idp", "common", refresh)
    assert (caught.value.error, caught.value.code) == ("invalid_grant", 700082)
    assert identity.refused == {"refresh_token/invalid_grant": 1}


def test_the_identity_provider_discovery_and_its_refusals(idp: Idp) -> None:
    config = idp.http.get(f"{idp.authority}/v2.0/.well-known/openid-configuration").json()
    assert config["token_endpoint"] == f"{idp.authority}/oauth2/v2.0/token"
    assert config["device_authorization_endpoint"] == f"{idp.authority}/oauth2/v2.0/devicecode"
    assert (
        idp.http.get(f"{idp.running.root}/nowhere.example/v2.0/.well-known/openid-configuration").json()[
            "error"
        ]
        == "invalid_tenant"
    )
    token = f"{idp.authority}/oauth2/v2.0/token"
    app = {
        "grant_type": "client_credentials",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "scope": auth.USER_SCOPE,
    }
    tenant_token = token.replace("/common/", f"/{SANDBOX_TENANT_ID}/")
    assert idp.http.post(tenant_token, data=app).json()["error"] == "invalid_scope"  # not /.default
    unknown = idp.http.post(token, data={**app, "grant_type": "password", "client_id": "nobody"})
    assert (unknown.status_code, unknown.json()["error"]) == (400, "unauthorized_client")
    assert idp.http.post(token, data={"grant_type": "implicit"}).json()["error"] == "unsupported_grant_type"
    assert idp.http.post(token, json={"grant_type": "password"}).json()["error"] == "invalid_request"


def test_the_password_grant_warns_that_mfa_makes_it_fail(idp: Idp) -> None:
    signed_in = password_login()
    assert signed_in.exit_code == 0
    assert "cannot answer MFA" in signed_in.stderr and "device code" in signed_in.stderr
    assert "MFA" not in signed_in.stdout
