"""What the tests share: rows and workbooks to feed bulkref, the sandbox as a test drives it,
the checks a run's outcome must pass, and a server that misbehaves where the sandbox cannot.

Test modules import from here, never from one another; the fixtures over these live in
conftest.py, which has pytest rewrite this module's asserts as it does a test's.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import openpyxl

from bulkref.api.client import RetryPolicy
from bulkref.sandbox import SandboxOptions, SandboxServer
from bulkref.sheets.examples import EXAMPLES
from bulkref.sheets.template import build_workbook, save_workbook

# -- rows and workbooks --------------------------------------------------------

# One valid new Partner-led referral, by the header a person would type.
VALID_ROW: dict[str, object] = {
    "External Reference ID": "CRM-1",
    "Referral Name": "Contoso ERP",
    "Deal Type": "Partner-led",
    "Status": "New",
    "Substatus": "Pending",
    "Customer Name": "Contoso Ltd",
    "Address Line 1": "1 Main St",
    "City": "Seattle",
    "Country": "US",
    "Customer Size": "51to500employees",
    "Customer Contact 1 First Name": "Sue",
    "Customer Contact 1 Last Name": "Smith",
    "Customer Contact 1 Email": "sue@contoso.com",
    "Customer Contact 1 Phone": "+1 425 555 0100",
    "Share With Microsoft Sellers": "Yes",
    "Deal Value": 50000,
    "Currency": "USD",
    "Closing Date": dt.datetime(2027, 3, 31),
    "Marketplace Purchase Intent": "HaveNotDecided",
    "Help Needed": None,
    "Partner Role": None,
    "Solution Area": None,
    "Solution Play": None,
}


def row(**changes: object) -> dict[str, object]:
    """VALID_ROW with some cells changed; keys use the header with _ for spaces."""
    out = dict(VALID_ROW)
    for k, v in changes.items():
        out[k.replace("_", " ")] = v
    return out


def write_xlsx(
    path: Path,
    rows: Sequence[dict[str, object]],
    sheet: str = "Referrals",
    headers: Sequence[str] | None = None,
) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    headers = list(headers or dict.fromkeys(k for r in rows for k in r))
    ws.append(headers)
    for r in rows:
        ws.append([r.get(h) for h in headers])
    wb.save(path)
    return path


def write_csv(
    path: Path, rows: Sequence[dict[str, object]], encoding: str = "utf-8", delimiter: str = ","
) -> Path:
    headers = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(headers)
        for r in rows:
            w.writerow(
                [
                    ""
                    if r.get(h) is None
                    else (r[h].date().isoformat() if isinstance(r[h], dt.datetime) else r[h])
                    for h in headers
                ]
            )
    return path


# -- the sandbox as a test drives it -------------------------------------------

TOKEN = "sandbox-test-token"

#: One client for the whole run: creating an httpx client (its TLS context) costs
#: tens of milliseconds, which ``httpx.get()`` and friends pay on every call.
http = httpx.Client(timeout=10)


@dataclass
class Admin:
    """The sandbox's own routes under /_sandbox/ (not part of the emulated API)."""

    root: str
    #: Sent when the sandbox requires issued tokens (the admin routes then do too).
    token: str | None = None

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        response = http.request(method, f"{self.root}/_sandbox/{path}", json=body, headers=headers)
        response.raise_for_status()
        return response

    def reset(self) -> None:
        self._call("POST", "reset")

    def seed(self, docs: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Store referrals as given (Incoming, Closed, old ones...), bypassing the rules."""
        payload = self._call("POST", "referrals", docs).json()
        return payload["value"] if isinstance(docs, list) else payload

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats").json()  # type: ignore[no-any-return]

    def set_faults(self, spec: str, seed: int | None = None) -> None:
        self._call("POST", "faults", {"faults": spec, "seed": seed})


@dataclass
class RunningSandbox:
    server: SandboxServer
    token: str = TOKEN
    admin: Admin = field(init=False)

    def __post_init__(self) -> None:
        self.admin = _admin(self.server)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1.0/engagements/referrals``."""
        return self.server.url

    @property
    def root(self) -> str:
        return self.server.root

    @property
    def options(self) -> SandboxOptions:
        return self.server.options

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 10)
        return httpx.Client(headers=self.headers, **kwargs)

    def restart(self) -> RunningSandbox:
        """Stop this sandbox and start a new one with the same options (and so the same --db)."""
        self.server.stop()
        options = replace(self.server.options, port=0)
        self.server = SandboxServer(options).start()
        self.admin = _admin(self.server)
        return self


def _admin(server: SandboxServer) -> Admin:
    token = server.admin_token if server.options.require_issued_tokens else None
    return Admin(server.root, token)


def referral_body(**changes: Any) -> dict[str, Any]:
    """A small valid body for POST /referrals; keyword arguments replace top-level fields."""
    body: dict[str, Any] = {
        "name": "Contoso ERP",
        "externalReferenceId": "CRM-1",
        "type": "Shared",
        "qualification": "SalesQualified",
        "customerProfile": {
            "name": "Contoso Ltd",
            "address": {"addressLine1": "1 Main St", "city": "Seattle", "country": "US"},
            "size": "51to500employees",
            "team": [{"firstName": "Sue", "lastName": "Smith", "email": "sue@contoso.com"}],
        },
        "consent": {
            "consentToToShareInfoWithOthers": True,
            "consentToContact": True,
            "consentToShareReferralWithMicrosoftSellers": True,
        },
        "details": {
            "notes": "",
            "dealValue": 50000,
            "currency": "USD",
            "closingDateTime": "2027-03-31T00:00:00Z",
        },
        "team": [{"firstName": "John", "lastName": "Doe", "email": "john@partner.example"}],
    }
    body.update(changes)
    return body


# -- a run's outcome -------------------------------------------------------------

# Faults answer with Retry-After 0 so the suite stays fast; the rates are those of the issue.
FAULTS = "429=0.04,503=0.04,500=0.03,reset=0.03,commit-then-500=0.04,commit-then-reset=0.04,retry-after=0"


def sheet(path: Path, n: int, prefix: str = "R") -> Path:
    """``n`` deals, cycling through the examples (a third of them two-step chains)."""
    rows = []
    for i in range(n):
        r = dict(EXAMPLES[i % len(EXAMPLES)])
        r["external_id"] = f"{prefix}-{i:05d}"
        rows.append(r)
    save_workbook(build_workbook(rows), path)
    return path


def everything(url: str, token: str) -> list[dict[str, Any]]:
    out, next_url = [], f"{url}?$top=100000"
    while next_url:
        page = httpx.get(next_url, headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        out += page["value"]
        next_url = page.get("@odata.nextLink")
    return out


def assert_exactly_once(url: str, token: str, n: int, prefix: str = "R") -> None:
    docs = everything(url, token)
    partner = Counter(d.get("externalReferenceId") for d in docs if d["organizationId"] != "msft")
    wanted = {f"{prefix}-{i:05d}" for i in range(n)}
    assert {k: c for k, c in partner.items() if k in wanted and c != 1} == {}, "duplicates"
    assert wanted <= set(partner), f"missing: {sorted(wanted - set(partner))[:5]}"
    by_engagement = Counter(d["engagementId"] for d in docs)
    ext_of = {
        d["engagementId"]: d["externalReferenceId"]
        for d in docs
        if d["organizationId"] != "msft" and d.get("externalReferenceId")
    }
    chains = {ext_of[e]: c for e, c in by_engagement.items() if e in ext_of}
    # Examples 3 and 4 are co-sell, 5 shared with a partner: two referrals each, all others one.
    for i in range(n):
        assert chains[f"{prefix}-{i:05d}"] == (2 if i % 5 in (2, 3, 4) else 1), i


# -- the wire ---------------------------------------------------------------------

FAST = RetryPolicy(base=0.01, cap=0.05)


class Recorder(httpx.AsyncBaseTransport):
    """The real HTTP transport, keeping each request sent: the test's window on the wire."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        self.responses.append(response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- a server that misbehaves where the sandbox cannot ------------------------------

HOSTILE_TOKEN = "eyJhbGciOiJub25lIn0.c2VjcmV0LXBheWxvYWQ.hostile-s3cr3t-token-value"
HOSTILE_PATH = "/v1.0/engagements/referrals"


@dataclass
class Hostile:
    """A referrals collection in memory with switchable misbehaviour."""

    on_post: Callable[[Hostile, dict[str, Any], dict[str, str]], tuple[int, Any]] | None = None
    lag: float = 0.0  # seconds before a stored referral shows in listings
    get_status: int = 200  # else every GET is refused, with the Authorization header echoed
    referrals: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    posts: list[dict[str, str]] = field(default_factory=list)  # the headers of every POST
    gets: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def store(self, body: dict[str, Any]) -> dict[str, Any]:
        doc = {**body, "id": str(uuid.uuid4()), "eTag": '"1"', "organizationId": "partner"}
        doc.setdefault("engagementId", str(uuid.uuid4()))
        with self.lock:
            self.referrals.append((time.monotonic(), doc))
        return doc

    def listing(self, filter_text: str) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self.lock:
            visible = [d for t, d in self.referrals if now - t >= self.lag]
        # Enough OData for bulkref's look-ups: "field eq 'v' or field eq 'w'".
        wanted: dict[str, set[str]] = {}
        for clause in filter_text.split(" or "):
            name, _, value = clause.partition(" eq ")
            wanted.setdefault(name.strip(), set()).add(value.strip().strip("'"))
        return [d for d in visible if any(str(d.get(k)) in v for k, v in wanted.items())]


@contextmanager
def serve_hostile() -> Iterator[Hostile]:
    """A Hostile server on a free loopback port, stopped on leaving."""
    state = Hostile()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            state.gets += 1
            if state.get_status != 200:
                auth = self.headers.get("Authorization", "")
                error = {"code": "unauthorized", "message": f"Token {auth} refused", "target": auth}
                self._send(state.get_status, {"error": error})
                return
            path = urlparse(self.path).path
            if path != HOSTILE_PATH:  # by id: consistent at once, whatever the listings' lag
                doc = next((d for _, d in state.referrals if path == f"{HOSTILE_PATH}/{d['id']}"), None)
                if doc is None:
                    self._send(404, {"error": {"code": "notFound", "message": "No such referral."}})
                else:
                    self._send(200, doc)
                return
            query = parse_qs(urlparse(self.path).query)
            self._send(200, {"value": state.listing(query.get("$filter", [""])[0])})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.posts.append(headers)
            if state.on_post is None:
                self._send(201, state.store(body))
                return
            status, answer = state.on_post(state, body, headers)
            if status == 0:  # the answer is lost: close the connection without one
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self._send(status, answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}{HOSTILE_PATH}"
    yield state
    server.shutdown()
    server.server_close()


# -- the web app over HTTP and in a browser --------------------------------------------------

#: Debian's chromedriver, which the browser tests drive (nothing downloads a browser).
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Where the browser tests leave screenshots (scripts/screenshots.py sets it); None: none.
SHOTS = os.environ.get("BULKREF_SCREENSHOTS")

#: A Salesforce-style opportunities export: neither the template nor a layout read as it is.
SALESFORCE = """Opportunity Name,Account Name,Amount,Close Date,Stage,Billing Country
Contoso Azure,Contoso Ltd,12000,01/30/2027,Prospecting,U.S.
Fabrikam Fabric,Fabrikam GmbH,45000,02/15/2027,Qualification,Deutschland
Adatum Copilot,Adatum Corp,8000,03/01/2027,Closed Won,U.S.
Northwind ERP,Northwind Traders,99000,12/31/2026,Negotiation/Review,U.S.
Tailspin Data,Tailspin Toys,5000,11/30/2026,Closed Lost,Deutschland
Litware Sec,Litware Inc,15000,04/01/2027,Prospecting,U.S.
Proseware AI,Proseware,22000,05/20/2027,Qualification,U.S.
Wingtip Cloud,Wingtip,31000,06/30/2027,Prospecting,Deutschland
Woodgrove Bank,Woodgrove,77000,07/15/2027,Negotiation/Review,U.S.
Coho Winery,Coho,3000,08/31/2027,Prospecting,U.S.
"""

#: A small CRM export with an id per deal, mapped in the browser by the mapping-page tests.
CRM_EXPORT = (
    "Opportunity ID,Opportunity Name,Account Name,Billing Street,Billing City,Billing Country,"
    "Amount,Currency,Close Date,Stage,Contact Email\n"
    + "".join(
        f"OPP-{i},Deal {i},Account {i},{i} Main St,Seattle,{country},{1000 * i},USD,0{i}/15/2027,{stage},"
        f"c{i}@example.com\n"
        for i, (country, stage) in enumerate(
            [("U.S.", "Prospecting"), ("Deutschland", "Closed Won"), ("U.S.", "Qualification")], 1
        )
    )
)


def web_client(server: Any) -> httpx.Client:
    """A client of a running ``bulkref serve`` (``WebServer``)."""
    return httpx.Client(base_url=server.url, timeout=60)


def csrf_of(c: httpx.Client) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', c.get("/").text)
    assert found is not None
    return found.group(1)


def upload_file(c: httpx.Client, path: Path, name: str | None = None) -> str:
    """Upload ``path`` as a new import; its address (``/imports/<id>``)."""
    with path.open("rb") as f:
        r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": (name or path.name, f)})
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[0]


def upload_bytes(c: httpx.Client, name: str, data: bytes, mapping: bytes | None = None) -> str:
    """Upload ``data`` as a file named ``name`` (and a mapping beside it); its address."""
    files = {"file": (name, data)}
    if mapping is not None:
        files["mapping"] = ("deals.mapping.toml", mapping)
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files=files)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[0]


def check_counts(page: str) -> dict[str, int]:
    """The Check page's counts, by their labels."""
    start = page.index('id="counts"')
    box = page[start : page.index('<div class="alert', start)]
    pairs = re.findall(r'class="big"[^>]*>(-?\d+)</span>\s*([a-z0-9 ]+)', box)
    return {label.strip(): int(n) for n, label in pairs}


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 30) -> Any:
    from selenium.common.exceptions import NoSuchElementException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    # A page that polls its progress reloads itself when done: a look taken as it navigates
    # is "aborted by navigation", and is taken again.
    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(NoSuchElementException, WebDriverException)
    ).until(condition)


def shot(driver: Any, name: str) -> None:
    """The whole page (up to 1,600 pixels tall) as a PNG, through the DevTools protocol."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    content = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    height = min(1600, int(content["height"]))
    size = {"width": 1360, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", size)
    try:
        png = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"]
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    (Path(SHOTS) / f"{name}.png").write_bytes(base64.b64decode(png))


def axe_findings(driver: Any) -> list[str]:
    """axe-core's critical and serious findings on the page shown, one line each. The engine
    is the axe.min.js the axe-playwright-python package ships (a test dependency), injected
    through Selenium: offline, whatever the page's own policy admits."""
    from importlib import resources

    axe = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")
    assert axe.startswith("/*! axe v4"), axe[:40]  # the package really ships the engine
    driver.set_script_timeout(60)
    driver.execute_script(axe)
    violations = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ["violations"]}).then(
          (r) => done(r.violations),
          (e) => done([{id: "axe-failed", impact: "critical", help: String(e), nodes: []}]));
        """
    )
    assert isinstance(violations, list)
    return [
        f"{driver.current_url}: {v['id']} ({v['impact']}) {v['help']}: "
        + "; ".join(str(n["target"]) for n in v["nodes"][:4])
        for v in violations
        if v["impact"] in ("critical", "serious")
    ]
