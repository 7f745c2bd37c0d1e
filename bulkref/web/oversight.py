"""The pages and files by which people oversee imports: signing in and out, the queue of
imports, an import's audit trail (page, CSV, JSON) and the results of its earlier runs.

The rules behind them live in ``people`` (sign-in, sessions), ``approvals`` and
``audit``; this module only answers requests with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bulkref.web.approvals import QUEUE_STATE, age, awaiting
from bulkref.web.audit import Trail
from bulkref.web.security import local_path
from bulkref.web.store import download_stem

if TYPE_CHECKING:
    from bulkref.web.app import App

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def routes(app: App) -> list[Route]:
    async def signin_page(request: Request) -> Response:
        nxt = local_path(request.query_params.get("next") or "/")
        if app.people.person(request) is not None:
            return RedirectResponse(nxt, status_code=303)
        return app.page(request, "signin.html", active="signin", next=nxt)

    async def signin_start(request: Request) -> Response:
        return await app.people.start(request)

    async def signin_done(request: Request) -> Response:
        return await app.people.done(request)

    async def signout(request: Request) -> Response:
        await app._form(request)
        return await app.people.sign_out(request, app.people.person(request))

    async def queue(request: Request) -> Response:
        me = app.people.actor(request)
        mine = request.query_params.get("show") == "mine"
        rows = []
        for imp in app.store.recent(200):
            step = app.step(imp)
            approval = app._approvals(imp)
            waiting = awaiting(step, imp, approval, me, app.rules)
            if mine and not waiting:
                continue
            plan, current = app._plan_state(imp)
            rows.append(
                {
                    "imp": imp,
                    "state": QUEUE_STATE.get(step, step),
                    "step": step,
                    "preparer": app.rules.preparer(imp),
                    "summary": plan.summary if plan is not None and current else None,
                    "approvals": len((approval or {}).get("approvals", [])) if approval else 0,
                    "required": app.rules.required if app.rules.team else 1,
                    "age": age(str(imp.meta.get("updated") or imp.created)),
                    "waiting": waiting,
                }
            )
        return app.page(request, "queue.html", active="queue", rows=rows, mine=mine)

    async def audit_page(request: Request) -> Response:
        imp = app._import(request)
        trail = Trail(imp.folder)
        return app.page(
            request,
            "audit.html",
            imp,
            active="audit",
            entries=trail.entries(),
            check=trail.verify(),
            withdrawn=imp.meta.get("withdrawn", []),
        )

    async def audit_csv(request: Request) -> Response:
        imp = app._import(request)
        text = Trail(imp.folder).as_csv()
        name = f"{download_stem(imp.name)}.audit.csv"
        return Response(
            text.encode("utf-8-sig"),  # Excel reads the names' accents right with the BOM
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    async def audit_json(request: Request) -> Response:
        imp = app._import(request)
        name = f"{download_stem(imp.name)}.audit.json"
        return JSONResponse(
            {"import": imp.id, "name": imp.name, **Trail(imp.folder).as_json()},
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    async def run_results(request: Request) -> Response:
        imp = app._import(request)
        number = _number(request.path_params["n"])
        path = app.store.run_results(imp, number) if number is not None else None
        if path is None:
            raise HTTPException(404, "That run has no results.")
        app.record(imp, "download", app.people.actor(request), {"file": f"run {number} results.xlsx"})
        stem = download_stem(imp.name)
        return FileResponse(path, filename=f"{stem}.run-{number}.results.xlsx", media_type=XLSX)

    return [
        Route("/signin", signin_page),
        Route("/signin/start", signin_start),
        Route("/signin/done", signin_done),
        Route("/signout", signout, methods=["POST"]),
        Route("/queue", queue),
        Route("/imports/{id}/audit", audit_page),
        Route("/imports/{id}/audit.csv", audit_csv),
        Route("/imports/{id}/audit.json", audit_json),
        Route("/imports/{id}/runs/{n}/results.xlsx", run_results),
    ]


def _number(text: Any) -> int | None:
    return int(text) if isinstance(text, str) and text.isdigit() and len(text) < 6 else None
