"""The sandbox's browser sign-in (authorization code with PKCE), as MSAL runs it and as a
hostile client would try it: two test people, codes redeemed once, verifiers checked,
redirects only to loopback, and a page that shows every value as text."""

from __future__ import annotations

import html
import re
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from helpers import RunningSandbox

import bulkref
from bulkref.api.browser_signin import BrowserSignIn
from bulkref.sandbox.options import (
    SANDBOX_CLIENT_ID,
    SANDBOX_PASSWORD,
    SANDBOX_SECOND_PASSWORD,
    SANDBOX_SECOND_USER,
    SANDBOX_USER,
)

REDIRECT = "http://127.0.0.1:9/signin/done"


@pytest.fixture
def idp(sandbox_factory: Callable[..., RunningSandbox], monkeypatch: pytest.MonkeyPatch) -> RunningSandbox:
    running = sandbox_factory(tls=True, require_issued_tokens=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(running.server.ca_file))
    return running


@pytest.fixture
def browser(idp: RunningSandbox) -> Iterator[httpx.Client]:
    """What a browser does with the sign-in page: GET it, POST its form, stop at the redirect."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(idp.server.ca_file)), timeout=10) as c:
        yield c


def people(idp: RunningSandbox, tmp_path: Path) -> BrowserSignIn:
    return BrowserSignIn(tmp_path / "people", authority=f"{idp.root}/common", client_id=SANDBOX_CLIENT_ID)


def fill(
    browser: httpx.Client, url: str, username: str, password: str, action: str = "signin"
) -> httpx.Response:
    page = browser.get(url)
    assert page.status_code == 200, page.text
    fields = {
        k: html.unescape(v) for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    }
    form = {**fields, "username": username, "password": password, "action": action}
    return browser.post(url.split("?")[0], data=form)


def answer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query))


def test_two_people_sign_in_and_call_the_api_as_themselves(
    idp: RunningSandbox, browser: httpx.Client, tmp_path: Path
) -> None:
    signing = people(idp, tmp_path)
    signed: list[Any] = []
    for username, password in (
        (SANDBOX_USER, SANDBOX_PASSWORD),
        (SANDBOX_SECOND_USER, SANDBOX_SECOND_PASSWORD),
    ):
        url, flow = signing.start(REDIRECT)
        assert "code_challenge=" in url and "code_challenge_method=S256" in url
        signed.append(signing.finish(flow, answer(fill(browser, url, username, password))))
    ann, ben = signed
    assert (ann.username, ben.username) == (SANDBOX_USER, SANDBOX_SECOND_USER)
    assert ann.key != ben.key
    caches = sorted(p.name for p in (tmp_path / "people").glob("*.bin"))
    assert caches == sorted([f"{ann.key}.bin", f"{ben.key}.bin"])  # one cache per person
    for person in (ann, ben):
        token = signing.caller(person).token()
        api = browser.get(idp.url, headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 200
        assert signing.signed_in(person)
    signing.sign_out(ann.key)
    assert not signing.signed_in(ann) and signing.signed_in(ben)
    assert not (tmp_path / "people" / f"{ann.key}.bin").exists()


def test_the_sign_in_page_refuses_a_wrong_password_and_shows_values_as_text(
    idp: RunningSandbox, browser: httpx.Client, tmp_path: Path
) -> None:
    url, _ = people(idp, tmp_path).start(REDIRECT, login_hint="<b>x</b>@contoso.example")
    page = browser.get(url)
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert SANDBOX_USER in page.text and SANDBOX_SECOND_USER in page.text  # the test people are named
    wrong = fill(browser, url, SANDBOX_USER, "not the password")
    assert wrong.status_code == 400 and "do not match" in wrong.text and "location" not in wrong.headers
    cancelled = answer(fill(browser, url, "", "", action="cancel"))
    assert cancelled["error"] == "access_denied"
    with pytest.raises(bulkref.SignInRefused, match="not completed"):
        people(idp, tmp_path).finish({"state": cancelled.get("state")}, cancelled)


def test_codes_are_redeemed_once_with_their_verifier_and_redirect_uri(
    idp: RunningSandbox, browser: httpx.Client, tmp_path: Path
) -> None:
    url, flow = people(idp, tmp_path).start(REDIRECT)
    code = answer(fill(browser, url, SANDBOX_USER, SANDBOX_PASSWORD))["code"]
    token_url = f"{idp.root}/common/oauth2/v2.0/token"
    grant = {
        "grant_type": "authorization_code",
        "client_id": SANDBOX_CLIENT_ID,
        "code": code,
        "redirect_uri": REDIRECT,
        "scope": " ".join(flow["scope"]),
    }
    wrong_verifier = browser.post(token_url, data={**grant, "code_verifier": "x" * 43}).json()
    assert wrong_verifier["error"] == "invalid_grant" and "AADSTS50148" in wrong_verifier["error_description"]
    # A refused redemption spends the code too, as a stolen code must not be tried again.
    again = browser.post(token_url, data={**grant, "code_verifier": flow["code_verifier"]}).json()
    assert again["error"] == "invalid_grant" and "AADSTS54005" in again["error_description"]

    url, flow = people(idp, tmp_path).start(REDIRECT)
    code = answer(fill(browser, url, SANDBOX_USER, SANDBOX_PASSWORD))["code"]
    elsewhere = {
        **grant,
        "code": code,
        "redirect_uri": "http://127.0.0.1:10/other",
        "code_verifier": flow["code_verifier"],
    }
    assert "AADSTS50011" in browser.post(token_url, data=elsewhere).json()["error_description"]


def test_no_redirect_leaves_loopback_and_pkce_is_required(
    idp: RunningSandbox, browser: httpx.Client, tmp_path: Path
) -> None:
    url, _ = people(idp, tmp_path).start(REDIRECT)
    for evil in ("https://evil.example/cb", "http://127.0.0.1.evil.example/cb", "javascript:alert(1)"):
        page = browser.get(url.replace("http%3A%2F%2F127.0.0.1%3A9%2Fsignin%2Fdone", evil))
        assert page.status_code == 400 and "location" not in page.headers
        assert "AADSTS50011" in page.text
    unknown = browser.get(url.replace(f"client_id={SANDBOX_CLIENT_ID}", "client_id=nobody"))
    assert unknown.status_code == 400 and "location" not in unknown.headers
    plain = re.sub(r"&code_challenge(_method)?=[^&]*", "", url)
    refused = browser.get(plain)
    assert refused.status_code == 302
    assert dict(parse_qsl(urlsplit(refused.headers["location"]).query))["error"] == "invalid_request"
    config = browser.get(f"{idp.root}/common/v2.0/.well-known/openid-configuration").json()
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["authorization_endpoint"] == f"{idp.root}/common/oauth2/v2.0/authorize"
