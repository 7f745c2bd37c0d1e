"""A local Partner Center Referrals API: what ``bulkref sandbox`` serves.

It implements ``/v1.0/engagements/referrals`` as shared/docs/referrals-api.md
and the seed pages describe it (create, get, list with OData, PUT, PATCH), with
the service's validation, errors and headers, plus injected faults and a rate
limit for testing a client's retries. The rest of bulkref never imports it.

Public surface::

    from bulkref.sandbox import SandboxOptions, SandboxServer, create_app, serve

    create_app(SandboxOptions(...))        # the ASGI app (app.sandbox holds the state)
    serve(SandboxOptions(...), ready=...)  # serve in the foreground until Ctrl-C
    SandboxServer(SandboxOptions(port=0))  # serve from a background thread: .start(), .url, .stop()
    bulkref.sandbox.command.sandbox        # the click command ``bulkref sandbox``

Modules: ``app`` (routes, gateway), ``referrals`` (the collection's
operations), ``rules`` (validation), ``service`` (its enumerations and status
rules, from ``data/service.toml``), ``odata`` (listing), ``store`` (memory /
SQLite), ``faults``, ``ratelimit``, ``replay`` (MS-RequestId), ``bearer``,
``identity`` (the identity provider), ``tls`` (https), ``document`` (ids,
times, eTags, links), ``server`` (uvicorn), ``command`` (click). It imports
nothing from the rest of bulkref (a test enforces it): its enumerations are
written from the documentation, so that it checks the client.

Strictness switches (``SandboxOptions`` fields and ``bulkref sandbox`` flags):
``filters``, ``create_status``, ``throttle_shape``, ``next_link``, ``closed``,
``solution_areas``, ``list_lag``, ``replay_request_ids``. ``profile="documented"``
sets the first four to ``documented``, ``closed`` to ``frozen`` and
``solution_areas`` to ``any``, and turns replay off unless
``replay_request_ids=True`` is given: where the documentation is silent it takes
the reading less convenient for a client. Each is described where it acts, below.

Choices the documentation leaves open
-------------------------------------

Who the caller is. The sandbox acts as one partner organisation
(``SandboxOptions.organization_id``, a fixed GUID, named "Sandbox Partner").
Any ``Authorization: Bearer <token>`` is accepted (with
``require_issued_tokens``: only an unexpired token this sandbox issued);
anything else is 401 ``unauthenticated``. The tenant (for the rate limit) is the token's ``tid``
claim when it is a JWT, else a hash of the token. Tokens are never logged.

direction. Every referral created through the API is ``Outgoing``: the partner
created it and it goes out from the partner, including the Microsoft referral
of a co-sell (``organizationId: msft``) and a connected referral for another
partner. ``Incoming`` referrals (leads and invitations from Microsoft or other
partners) exist only by seeding them through ``POST /_sandbox/referrals``; a
seeded referral without a direction is Incoming. An Incoming referral left New
has an ``expirationDateTime`` 14 days after creation and is stored as
Closed/Expired when seeded past it.

Whose referral a POST creates. A connected referral (one with the
``engagementId`` of an existing engagement) whose ``target`` names
``BusinessProfileLocation`` ``msft`` is Microsoft's (organizationId ``msft``,
organizationName "Microsoft"), as the "Creating a shared referral" section
sends it: ``target`` and ``engagementId``, no ``organizationId``. If such a body
also carries an ``organizationId`` other than ``msft`` it is refused (400,
target ``organizationId``): it says two things and the documentation shows
neither. Otherwise ``organizationId`` decides: absent (or the partner's own
id), the partner's referral (also when its target is a SolutionProfile or
even msft: the first referral of a shared deal names the other party too);
``msft``, the Microsoft referral (the co-sell upgrade's step 2 sends it with
``target: []``); any other id, a referral for that organisation, named by the
body's ``organizationName``. It cannot change afterwards.

Ids and case. ``id``, ``engagementId`` and ``externalReferenceId`` are
compared without regard to case everywhere: GET/PUT/PATCH
``/referrals/{ID}``, joining an engagement (the new referral takes the
engagement's stored spelling), ``$filter`` equality (``engagementId eq
'<UPPER>'``; ``id`` and ``externalReferenceId`` where the filters allow them)
and the read-only ids a PUT body repeats. GUIDs are the same GUID in either
case, and a look-up that misses on case reads as "absent" to a client, which
would then create the referral again.

Ids on POST. A POST carrying ``id`` is refused (400, target ``id``): the
service assigns ids. Other read-only fields in a POST body (eTag, times,
direction, links) are ignored and set by the sandbox. ``engagementId`` joins
an existing engagement; one that no referral carries is refused (400, target
``engagementId``). Joining does not check the referral's type or how many
referrals the engagement already has.

Bodies. Property names and enumeration values are matched without regard to
case and stored in the documented spelling; undocumented properties are kept
and returned. See ``rules`` for what is required beyond type, customerProfile,
consent and details. A new referral without status is New/Pending; with a
status but no substatus, the status's first substatus (Closed needs one).
With ``create_status="documented"`` (the default) the partner's own new
referral then comes back Active/Accepted with ``acceptedDateTime`` =
``createdDateTime``, as the create example answers a New/Pending POST and as
the resources page says of outgoing referrals; one created Closed stays
Closed, and a referral for Microsoft or another organisation keeps its status
(theirs to accept). ``as-sent`` keeps the status sent. Values the service
itself answers (status and substatus ``None``, ``assistanceRequestCode``
``Unknown``, solution ``type`` ``None``, ``details.requirements.salesPlays``)
are accepted. Services co-sell ``solutionArea`` and ``solutionPlay``:
``solution_areas="fy24"`` checks them against the FY24 table of the create
page (a play of another area is refused); ``any`` (the documented profile)
takes any text, since the resources page says they were updated for FY26 and
no public page lists the new ones. ``partnerRole`` is always checked.

MS-RequestId (``replay``). Nothing documents that the Referrals service
replays a repeated request id (the headers pages only tell the client to
repeat it on a retry after a time-out), so ``replay_request_ids`` is a
switch: None lets the profile decide (on for ``default``, off for
``documented``). When on, a POST, PUT or PATCH that repeats an
``MS-RequestId`` of the same tenant within 15 minutes with the same method,
path and JSON body gets the first successful answer again (status, headers,
body: the same ids), even when that answer was lost to a commit-then fault; a
repeat arriving while the first runs waits for it. The same id with another
method, path or body is 400 ``requestIdReused`` (target ``MS-RequestId``): a
client bug that reuses an id shows instead of one row silently taking
another's answer. When off, every request is applied: two identical PATCHes
that ``add`` to ``/team/-`` add the member twice.

PUT. ``If-Match`` is required: absent is 400 ``invalidRequest`` (target
``If-Match``), stale is 412 ``preconditionFailed``; ``*`` matches any.
If-Match is read as RFC 9110 says (13.1.1, strong comparison) with one
allowance: the eTag is a quoted strong entity tag (the create example's
``"eTag": "\\"00006d10-...\\""``); the same opaque tag without its quotes
matches (a sheet that lost them names the same tag, and RFC 9110 gives a
non-tag If-Match no meaning: a false 412 would be a conflict that is not
there); a weak ``W/"..."`` never matches, nor does the tag in another case
(it is opaque). See ``document.etag_matches``.
``links`` in the body is 400 (the documentation says to remove it); read-only
fields may be repeated but not changed; a PUT without a status keeps the
current one. Fields left out are removed.

PATCH. Only ``replace`` and ``add`` (others 400, target ``[i].op``); paths
are JSON pointers; read-only fields cannot be targeted (400, target the
pointer); ``replace`` of a missing member is 400. Only what the patch
changes is checked: each target path against the resource's shape (spelled as
documented), the status move when status or substatus changes, the cross-field
rules of what it touches; so a referral as the service answers it can be
patched. A number may be sent as its decimal text, as the PATCH page's
example does (``"value": "10000"`` for ``/details/dealValue``), and is stored
as the number; POST and PUT take numbers only. If-Match is checked when sent.
204 with the new ETag, or 200 with the referral under ``Prefer:
return=representation``. A PATCH is not deduplicated (see MS-RequestId).

Status. The transition table and the status/substatus pairs come from
``data/service.toml`` (see ``service``). A Closed referral: the API pages do
not say whether it can still change (the transition table allows Closed ->
Closed with another closed substatus; "no change after a terminal state" is
the UI bulk-upload page's). ``closed="frozen"`` (the default, and the
documented profile's: the harder case for a client) refuses every PUT and
PATCH (400, target ``status``), even one that would change nothing;
``closed="open"`` lets it change, its status only to Closed with a closed
substatus. ``acceptedDateTime``
is set when a referral first becomes Active. Every write changes ``eTag`` and
``updatedDateTime`` (times are strictly increasing, 7 fractional digits).

Error codes. 400/413/415 ``invalidRequest``, 401 ``unauthenticated``, 404
``itemNotFound``, 409 ``invalidRequest`` (admin seed of an existing id), 412
``preconditionFailed``, 429 ``tooManyRequests`` (the documented list has no
code for 429; clients should key on the status), 400 ``requestIdReused`` (an
MS-RequestId reused for another request while replay is on), 500
``generalException``, 503 ``serviceNotAvailable``. Every answer has ``request-id``, ``timestamp``
and the echoed ``client-request-id``; referral answers have ``ETag``.

Listing. See ``odata``: eq, ne, and, or, not, parentheses, paths, any()/all()
(``filters="documented"``: only the documented properties with eq, joined by
and, else 400 ``invalidRequest``); enumeration values, countries and
currencies compare without regard to case (``status eq 'active'``), and one
the service does not know (``status eq 'Bogus'``) is 400 ``invalidRequest``,
not an empty answer that would read as "absent";
order by createdDateTime/updatedDateTime; $top, $skip, $select (top-level
properties), $count; default order = creation. Pages hold at most
``--page-size`` referrals; ``@odata.nextLink`` is an absolute URL on the
sandbox's own host:port with an opaque ``$skiptoken`` (URL-safe base64 of the
query and the last sort key, which ends with the insertion sequence number),
stable under concurrent inserts (``next_link="documented"``:
``http://HOST:PORT/v1.0/referrals?$skiptoken=...``, the documented example's
scheme and path, which the sandbox serves as well). Links (``self``,
``relatedReferrals``) are built from the Host of the request, so they stay
right across restarts. Equality on ``id``, ``engagementId`` and
``externalReferenceId`` (and ``or`` of them) is an index look-up. With
``list_lag`` a write shows in listings only after that many seconds (its old
version until then); a GET by id sees it at once.

Faults (``faults``). One seeded ``random.Random`` decides each request: the
same seed and the same sequence of requests give the same faults. 429, 503,
500 and reset apply to every authenticated, unthrottled API request;
commit-then-500 and commit-then-reset to writes that succeeded (stored, then
the answer is replaced by a 500 or a dropped connection); each kind happens at
its rate among the requests it applies to. ``reset`` aborts the TCP connection
(the protocol class in ``server`` hands the transport to the app), so a client
sees a connection error, never a status. ``latency`` delays every API
request. Faults and rate limit never touch the admin routes.

Rate limit (``ratelimit``). A token bucket per tenant: capacity = the rate
(one second of burst), refilled at the rate. A refused request gets 429 with
``Retry-After`` (the wait rounded up to whole seconds) and
``x-ms-retry-after-ms`` (the exact wait); waiting that long succeeds. With
``throttle_shape="documented"`` every 429 (limit or fault) has the throttling
page's body ``{"statusCode":429,"message":"Rate limit is exceeded. Try again
in N seconds."}`` and Retry-After only.

Admin routes (not part of the emulated API, no faults; no auth unless
``require_issued_tokens``, when all but health take an issued token). They
refuse (403 ``accessDenied``) an ``Origin`` other than the sandbox's own, a
cross-site ``Sec-Fetch-Site`` and a ``Host`` that is not loopback, an IP
address, the bound host or this machine's name: a web page must not reset or
seed a sandbox (DNS rebinding included). A non-loopback ``host`` needs
``allow_remote``.
``POST /_sandbox/reset`` (no referrals, zeroed counters, fault dice re-seeded),
``POST /_sandbox/referrals`` (store a referral or a list as given, filling in
missing server fields: Incoming, Closed, old ones), ``GET /_sandbox/stats``
(requests by status, faults injected and requests eligible per kind,
rate-limited count, referral count, filterExamined, replayed), ``GET|POST
/_sandbox/faults`` (``{"faults": spec, "seed": n}``: change faults at runtime;
what GET shows, retry-after included, posts back unchanged), ``GET
/_sandbox/health``.

State. In memory by default; with ``--db`` a SQLite file (WAL) holds every
referral as its JSON document, and the state, eTags and paging tokens survive
a restart. Several sandboxes may share one file (see ``store``). Reads are
served from memory in both cases.

Identity provider (``identity``). The sandbox also answers enough of Entra
ID's v2.0 endpoints for MSAL (``bulkref login``) to sign in: OpenID
discovery at ``/{tenant}/v2.0/.well-known/openid-configuration``, the token
endpoint ``/{tenant}/oauth2/v2.0/token`` (password, client credentials,
refresh token, device code, authorization code), ``/{tenant}/oauth2/v2.0/devicecode``
and a browser's sign-in page at ``/{tenant}/oauth2/v2.0/authorize``
(authorization code with PKCE). Users, clients and token lifetimes come from
``SandboxOptions``; the defaults are two test people, ann@contoso.example /
sandbox-password and ben@contoso.example / sandbox-password-2, and client
bulkref-sandbox / sandbox-client-secret, and device codes are approved at once. MSAL talks to
https authorities only, so sign-in needs ``tls`` (``--tls``): a throwaway CA
whose file the server reports (``SandboxServer.ca_file``). Admin:
``GET /_sandbox/identity`` (grants issued and refused), ``POST
/_sandbox/device`` (approve or decline a device code), ``POST
/_sandbox/identity/revoke`` (forget every refresh token).

Logging. One line per request on stderr (logger ``bulkref.sandbox``): method,
path and query, status (or ``reset``), request-id, duration, injected fault;
never headers or bodies.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# name -> module that defines it. They load on first use: ``bulkref sandbox --help``
# and the rest of bulkref import this package without Starlette, uvicorn and the app.
_PUBLIC = {
    "SandboxOptions": "bulkref.sandbox.options",
    "SandboxServer": "bulkref.sandbox.server",
    "create_app": "bulkref.sandbox.app",
    "serve": "bulkref.sandbox.server",
}

__all__ = ["SandboxOptions", "SandboxServer", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'bulkref.sandbox' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from bulkref.sandbox.app import create_app
    from bulkref.sandbox.options import SandboxOptions
    from bulkref.sandbox.server import SandboxServer, serve
