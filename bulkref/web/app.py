"""The routes of ``bulkref serve``: one page per step of an import, over the public library API.

Start (``/``) -> Check -> Review -> Approve and apply -> Results, and Export.
Every page is rendered on the server with autoescaping on, so each value from a
sheet or from Partner Center is text, never markup. Every POST is a form with
the CSRF token (``security.check_csrf``). Long calls (plan, apply, export) run in
background threads (``jobs``) and the pages poll their progress. The review page
reads a plan a page of rows at a time (``reviewing``). Every rule (is a plan
current, what a run's summary counts) is the library's, through ``bulkref``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import bulkref
from bulkref.web import oversight, reviewing, security, views, wording
from bulkref.web.approvals import Rules, complete, require_confirmation, withdrawal
from bulkref.web.audit import Trail
from bulkref.web.cell_fix import CellFixes
from bulkref.web.jobs import Jobs
from bulkref.web.mapping_page import MappingPages
from bulkref.web.people import Actor, People, signing_from
from bulkref.web.render import Renderer
from bulkref.web.store import (
    INPUT_SUFFIXES,
    MAPPING_SUFFIXES,
    Import,
    Store,
    display_name,
    download_stem,
    hide_paths,
    private_names,
)

log = logging.getLogger("bulkref.web")

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 50 * 2**20
TARGET_TTL = 30.0  # seconds
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATE_FORMATS = ("xlsx", "csv")  # what /template.{fmt} serves (the start page links both)


@dataclass
class Settings:
    api_url: str | None = None
    sandbox: bool = False
    home: Path | None = None  # the data directory (default: bulkref's)
    access_token: str | None = None  # required of every request when set
    host: str = "127.0.0.1"  # the address served: requests must name it, or loopback (security.allowed_host)
    port: int = 8780
    max_upload: int = MAX_UPLOAD
    concurrency: int = 8
    # Seconds an apply waits, once the rest is done, for creates in doubt (apply --wait-in-doubt).
    wait_in_doubt: float = 120.0
    team: bool = False  # everyone signs in; the approver must not be the preparer (approvals)
    approvals: int = 1  # people who must approve a plan, with team
    secure: bool = False  # served over https (--certfile, or a proxy's --public-url): Secure cookies
    public_url: str | None = None  # the address people open, behind a reverse proxy
    authority: str | None = None  # the browser sign-in's settings, as bulkref login's
    tenant: str | None = None
    client_id: str | None = None


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        home = settings.home if settings.home is not None else bulkref.data_dir()
        self.home = home
        self.root = home / "web"
        self.store = Store(self.root)
        security.csrf_token(self.root)  # removes the token file earlier versions kept
        self._target = bulkref.describe_target(settings.api_url, settings.sandbox)
        self._target_read = time.monotonic()
        self.jobs = Jobs(self.store, settings.api_url, settings.sandbox, settings.wait_in_doubt)
        signing = signing_from(
            self.root / "people",
            authority=settings.authority,
            tenant=settings.tenant,
            client_id=settings.client_id,
        )
        self.people = People(
            self.root,
            port=settings.port,
            signing=signing,
            team=settings.team,
            secure=settings.secure,
            public_url=settings.public_url,
        )
        self.rules = Rules(team=settings.team, required=settings.approvals)
        self.render = Renderer(self.people.csrf, lambda: self.target, home)
        self.render.env.filters["page_message"] = wording.page_message
        self.render.env.globals["sheet_notes"] = wording.sheet_notes
        self.mappings = MappingPages(self)
        self.cells = CellFixes(self)
        self._prints: dict[Path, tuple[tuple[int, int], str]] = {}

    @property
    def target(self) -> bulkref.TargetInfo:
        """The banner's target, read again every half minute: ``bulkref login`` in a
        terminal while the app runs shows on the next pages."""
        if time.monotonic() - self._target_read > TARGET_TTL:
            self._target = bulkref.describe_target(self.settings.api_url, self.settings.sandbox)
            self._target_read = time.monotonic()
        return self._target

    # -- helpers ------------------------------------------------------------------------------
    def hide(self, text: str, imp: Import | None = None) -> str:
        """``text`` (a message from the library) without the server's paths: files named
        as they were uploaded (pages get this from the renderer)."""
        return hide_paths(text, private_names(self.home, imp))

    def _shown_job(self, snapshot: dict[str, Any], imp: Import | None = None) -> dict[str, Any]:
        """A job's progress as progress.json shows it: its error and notes without paths."""
        if snapshot.get("error"):
            snapshot["error"] = self.hide(str(snapshot["error"]), imp)
        snapshot["notes"] = [self.hide(str(n), imp) for n in snapshot.get("notes") or ()]
        return snapshot

    def _import(self, request: Request) -> Import:
        imp = self.store.get(request.path_params["id"])
        if imp is None:
            raise HTTPException(404, "There is no such import: start one from the first page.")
        return imp

    async def _form(self, request: Request) -> Any:
        form = await request.form(max_files=2, max_fields=40)
        security.check_csrf(form, self.people.csrf(request))
        return form

    def record(
        self, imp: Import, event: str, actor: Actor, details: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """An entry in ``imp``'s audit trail, with the fingerprints of its input and plan as they are now."""
        return Trail(imp.folder).append(
            event,
            actor,
            input_fingerprint=bulkref.fingerprint(imp.input) if imp.input.is_file() else None,
            plan_fingerprint=bulkref.fingerprint(imp.plan_path) if imp.plan_path.is_file() else None,
            details=details,
        )

    def caller(self, request: Request) -> bulkref.Caller | None:
        """Whom Partner Center is called as: the signed-in person; or, without --team, the
        server's own credentials. A LIVE target with neither is refused with what to do on
        the page (never a command to type)."""
        caller = self.people.caller(request)
        if caller is not None or self.target.is_sandbox:
            return caller
        if not self.settings.team and self.target.account is not None:
            return None
        if self.people.signing is None:
            raise HTTPException(
                401,
                f"Nobody is signed in to {self.target.name}, and signing in is not set up on this "
                "server: ask whoever runs it to set it up.",
            )
        raise HTTPException(401, f"Sign in to {self.target.name} first: use Sign in at the top of the page.")

    def _withdraw(self, imp: Import, actor: Actor, why: str) -> Import:
        """Record that ``why`` withdraws the approval of ``imp``'s plan (if any): in its meta and trail."""
        approval = imp.approval()
        if not approval:
            return imp
        entry = withdrawal(approval, actor, why)
        self.record(imp, "withdraw", actor, {"approvedBy": entry["approvedBy"], "why": why})
        return self.store.update_meta(imp, withdrawn=[*imp.meta.get("withdrawn", []), entry])

    def plan_print(self, imp: Import) -> str | None:
        """The fingerprint of the import's plan.json (None: no plan), hashed again only
        when the file changed: every page of every import asks, and a plan of 20,000
        rows is tens of megabytes."""
        try:
            stat = imp.plan_path.stat()
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        known = self._prints.get(imp.plan_path)
        if known is None or known[0] != key:
            known = (key, bulkref.fingerprint(imp.plan_path))
            self._prints[imp.plan_path] = known
        return known[1]

    def _saved_plan(self, imp: Import) -> tuple[bulkref.Plan, int] | None:
        """(the saved plan, its rows read a page at a time; how many sheets they are from)."""
        printed = self.plan_print(imp)
        if printed is None:
            return None
        found = reviewing.load(imp.review_path, printed)
        if found is not None:
            return found
        # A plan.json without its index (made before there was one): read once, indexed.
        try:
            plan = bulkref.Plan.from_json(json.loads(imp.plan_path.read_text(encoding="utf-8")))
            reviewing.build(plan, imp.review_path, printed)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return reviewing.load(imp.review_path, printed)

    def _plan_state(self, imp: Import) -> tuple[bulkref.Plan | None, bool]:
        """(the saved plan, whether it is of the import's current input and mapping)."""
        found = self._saved_plan(imp)
        if found is None:
            return None, False
        return found[0], bulkref.why_stale(found[0]) is None

    def _approval(self, imp: Import) -> dict[str, Any] | None:
        """The approval, if it is of the saved plan as it is now and has every approver it needs."""
        approval = self._approvals(imp)
        return approval if complete(approval) else None

    def _approvals(self, imp: Import) -> dict[str, Any] | None:
        """The approvals given so far, if they are of the saved plan as it is now."""
        approval = imp.approval()
        if approval is None:
            return None
        printed = self.plan_print(imp)
        return approval if printed is not None and approval.get("planFingerprint") == printed else None

    def step(self, imp: Import) -> str:
        """How far the import has come, for the list and the step bar."""
        if self.jobs.running("apply", imp.id):
            return "applying"
        run = imp.run()
        if run is not None:
            state = run.get("state")
            if state == "done":
                # Creates whose answer was lost, not settled yet: applying again settles them.
                return "in doubt" if (run.get("summary") or {}).get("in_doubt") else "applied"
            if state in ("interrupted", "running"):  # running without a job: the server stopped mid-run
                return "interrupted"
            if state == "failed":
                return "apply failed"
        if self._approval(imp) is not None:
            return "approved"
        plan, current = self._plan_state(imp)
        return "planned" if plan is not None and current else "uploaded"

    def page(
        self, request: Request, template: str, imp: Import | None = None, **context: Any
    ) -> HTMLResponse:
        if imp is not None:
            context.setdefault("imp", imp)
            context.setdefault("step", self.step(imp))
            context.setdefault("preparer", self.rules.preparer(imp))
            context.setdefault("pending", self._approvals(imp))
        me = self.people.actor(request)
        if imp is not None:
            context.setdefault("refusal", self.rules.refusal(imp, me, context["pending"]))
        context.setdefault("me", me)
        context.setdefault("team", self.settings.team)
        context.setdefault("can_sign_in", self.people.signing is not None)
        return self.render.page(request, template, **context)

    # -- start --------------------------------------------------------------------------------
    async def start(self, request: Request) -> Response:
        imports = [(imp, self.step(imp)) for imp in self.store.recent()]
        return self.page(request, "start.html", imports=imports, active="start")

    async def template_file(self, request: Request) -> Response:
        fmt = request.path_params["fmt"]
        if fmt not in TEMPLATE_FORMATS:  # before any folder is made: /template.py is no page
            raise HTTPException(404, "There is no such page.")
        examples = request.query_params.get("examples") == "1"
        folder = Path(tempfile.mkdtemp(prefix="bulkref-template-"))
        out = folder / f"referrals-template.{fmt}"
        try:
            await run_in_threadpool(bulkref.write_template, out, fmt=fmt, examples=examples)
        except BaseException:  # the response's background task, which removes it, never runs then
            _remove(folder)
            raise
        name = f"referrals-template{'-examples' if examples else ''}.{fmt}"
        return FileResponse(
            out,
            filename=name,
            media_type=XLSX if fmt == "xlsx" else "text/csv",
            background=BackgroundTask(_remove, folder),
        )

    async def upload(self, request: Request) -> Response:
        form = await self._form(request)
        data, name, suffix = await _upload(form.get("file"), INPUT_SUFFIXES, "sheet")
        mapping = form.get("mapping")
        actor = self.people.actor(request)
        imp = self.store.create(display_name(name, "upload" + suffix), data, suffix, actor.as_json())
        where = "check"
        if isinstance(mapping, UploadFile) and mapping.filename:
            m_data, m_name, _ = await _upload(mapping, MAPPING_SUFFIXES, "mapping file")
            imp = self.store.set_mapping(imp, display_name(m_name, "mapping.toml"), m_data)
        else:  # a CRM export goes to its mapping page, or takes the mapping kept for its headers
            where = await run_in_threadpool(self.mappings.after_upload, imp)
        self.record(imp, "upload", actor, {"file": imp.name, "mapping": imp.mapping_name})
        log.info("import %s created", imp.id)
        return _see(f"/imports/{imp.id}/{where}")

    async def open_import(self, request: Request) -> Response:
        imp = self._import(request)
        step = self.step(imp)
        where = {
            "uploaded": "check",
            "planned": "review",
            "approved": "apply",
            "applying": "apply",
            "interrupted": "apply",
            "in doubt": "apply",
            "apply failed": "apply",
            "applied": "results",
        }[step]
        return _see(f"/imports/{imp.id}/{where}")

    # -- check --------------------------------------------------------------------------------
    async def check(self, request: Request) -> Response:
        imp = self._import(request)
        only = request.query_params.get("problems") == "1"
        columns = request.query_params.get("columns") == "problems"
        page = _int(request.query_params.get("page"), 1)
        try:
            validated = await run_in_threadpool(bulkref.check_file, imp.input, mapping=imp.mapping)
        except bulkref.BulkrefError as e:
            return self.page(request, "check.html", imp, active="check", unusable=str(e), grid=None)
        grid = views.grid(validated, only, page, columns)
        self._record_check(imp, request, validated)
        return self.page(request, "check.html", imp, active="check", grid=grid, unusable=None)

    def _record_check(self, imp: Import, request: Request, validated: Any) -> None:
        """One "check" entry per input and person: the page is shown again and again."""
        actor = self.people.actor(request)
        fingerprint = bulkref.fingerprint(imp.input)
        last = next(
            (e for e in reversed(Trail(imp.folder).entries()) if e.get("event") == "check"),
            None,
        )
        if last and last.get("inputFingerprint") == fingerprint and last["person"].get("key") == actor.key:
            return
        report = getattr(validated, "report", None)
        errors = len(getattr(report, "errors", ()) or ()) if report is not None else None
        self.record(imp, "check", actor, {"errors": errors})

    async def replace_input(self, request: Request) -> Response:
        imp = self._import(request)
        form = await self._form(request)
        if self.jobs.running("apply", imp.id):
            raise HTTPException(409, "This import is being applied: stop it before uploading another file.")
        data, name, suffix = await _upload(form.get("file"), INPUT_SUFFIXES, "sheet")
        require_confirmation(imp.approval(), form, "uploading another sheet")
        actor = self.people.actor(request)
        imp = self._withdraw(imp, actor, f"a new input was uploaded ({display_name(name, 'a sheet')})")
        imp = self.store.replace_input(
            imp, display_name(name, "upload" + suffix), data, suffix, actor.as_json()
        )
        self.record(imp, "input replaced", actor, {"file": imp.name})
        log.info("import %s: input replaced", imp.id)
        return _see(f"/imports/{imp.id}/check")

    async def annotated(self, request: Request) -> Response:
        imp = self._import(request)

        def write() -> Path:
            validated = bulkref.check_file(imp.input, mapping=imp.mapping)
            return bulkref.annotate(validated, imp.annotated_path)

        try:
            path = await run_in_threadpool(write)
        except bulkref.BulkrefError as e:
            raise HTTPException(422, self.hide(str(e), imp)) from None
        stem = download_stem(imp.name)
        return FileResponse(path, filename=f"{stem}.annotated.xlsx", media_type=XLSX)

    # -- review -------------------------------------------------------------------------------
    async def review(self, request: Request) -> Response:
        imp = self._import(request)
        job = self.jobs.get("plan", imp.id)
        if job is not None and job.running:
            return self.page(request, "review.html", imp, active="review", planning=job.snapshot())
        found = await run_in_threadpool(self._saved_plan, imp)
        plan, sheets = found if found is not None else (None, 1)
        current = plan is not None and bulkref.why_stale(plan) is None
        error = self.hide(job.error, imp) if job is not None and job.state == "failed" and job.error else None
        if plan is None or not current:
            return self.page(
                request, "review.html", imp, active="review", plan=None, stale=plan is not None, error=error
            )
        chosen = reviewing.Filter.of(request.query_params, "hidden" if plan.summary["unchanged"] else "shown")
        shown = await run_in_threadpool(reviewing.page, imp.review_path, chosen, sheets)
        return self.page(
            request,
            "review.html",
            imp,
            active="review",
            plan=plan,
            stale=False,
            approval=self._approval(imp),
            plan_fingerprint=self.plan_print(imp),
            error=error,
            chosen=chosen,
            shown=shown,
            total=len(plan.rows),
            prepared=imp.meta.get("updated") or imp.created,
        )

    async def make_plan(self, request: Request) -> Response:
        imp = self._import(request)
        form = await self._form(request)
        if self.jobs.running("apply", imp.id):
            raise HTTPException(
                409, "This import is being applied: wait for it, or stop it, before planning."
            )
        require_confirmation(imp.approval(), form, "planning again")
        actor = self.people.actor(request)
        caller = self.caller(request)

        if not self.jobs.running("plan", imp.id):
            # Withdrawn now, not when the new plan is saved: nothing may apply the old plan
            # meanwhile. The last run is kept whole first, with the plan and approval it ran.
            self.store.forget_run(imp)
            self._withdraw(imp, actor, "the plan was made again")
            imp.approval_path.unlink(missing_ok=True)
        # None: one is being made already, and the page shows it.
        self.jobs.start_plan(imp, lambda plan: self.keep_plan(imp, plan, actor), caller)
        return _see(f"/imports/{imp.id}/review")

    def keep_plan(self, imp: Import, plan: bulkref.Plan, actor: Actor | None = None) -> None:
        """``plan`` as the import's plan: plan.json (what apply runs and a reviewer downloads)
        and the index its review pages read; an approval of the last plan goes with it (its
        withdrawal recorded), and the last run is kept whole with the plan it ran."""
        self.store.forget_run(imp)  # a run made meanwhile, kept whole with the plan it ran
        plan.save(imp.plan_path)
        self._prints.pop(imp.plan_path, None)  # hashed anew, whatever its time stamp says
        printed = self.plan_print(imp)
        assert printed is not None  # just written
        reviewing.build(plan, imp.review_path, printed)
        imp.approval_path.unlink(missing_ok=True)  # an approval is of one plan
        if actor is not None:
            self.record(imp, "plan", actor, {"summary": plan.summary, "target": self.target.name})
        log.info("import %s planned", imp.id)

    async def plan_progress(self, request: Request) -> Response:
        imp = self._import(request)
        job = self.jobs.get("plan", imp.id)
        if job is None:
            return JSONResponse({"kind": "plan", "state": "done" if imp.plan_path.is_file() else "idle"})
        return JSONResponse(self._shown_job(job.snapshot(), imp))

    async def plan_html(self, request: Request) -> Response:
        imp = self._import(request)
        plan, _ = self._plan_state(imp)
        if plan is None:
            raise HTTPException(404, "This import has no plan yet.")
        # Shown as the user knows it: the sheet and mapping by their upload names, the
        # sandbox's state by its file name (the saved plan keeps the paths apply needs).
        target = {k: self.hide(v) if isinstance(v, str) else v for k, v in (plan.target or {}).items()}
        shown = dataclasses.replace(
            plan,
            source=imp.name,
            mapping=(imp.mapping_name or "the mapping file") if plan.mapping is not None else None,
            target=target if plan.target is not None else None,
        )
        html = bulkref.plan_html(shown)
        # Its rows name the sheet too (a CSV's is its generated file name): replaced as
        # the page escapes text (html.escape), since an uploaded name may hold " or <.
        for path, name in private_names(self.home, imp):
            html = html.replace(escape(path), escape(name))
        # The page admits only its own inline style and script, by hash (its meta policy):
        # the same policy as a header, and it may be framed by the review page only.
        policy = _meta_policy(html) + "; frame-ancestors 'self'"
        return HTMLResponse(html, headers={"content-security-policy": policy})

    async def plan_json(self, request: Request) -> Response:
        imp = self._import(request)
        if not imp.plan_path.is_file():
            raise HTTPException(404, "This import has no plan yet.")
        stem = download_stem(imp.name)
        return FileResponse(imp.plan_path, filename=f"{stem}.plan.json", media_type="application/json")

    async def approve(self, request: Request) -> Response:
        imp = self._import(request)
        form = await self._form(request)
        actor = self.people.actor(request)
        name = " ".join(str(form.get("name") or "").split())[:100]
        plan, current = self._plan_state(imp)
        if plan is None or not current:
            raise HTTPException(
                409, "The plan is missing or out of date: make the plan again, then approve it."
            )
        if form.get("plan") != bulkref.fingerprint(imp.plan_path):
            raise HTTPException(409, "The plan changed since this page was shown: review it again.")
        earlier = self._approvals(imp)
        refusal = self.rules.refusal(imp, actor, earlier)
        if refusal is not None:
            self.record(imp, "approval refused", actor, {"reason": refusal})
            raise HTTPException(403, refusal)
        if not name and not actor.signed_in:
            raise HTTPException(422, "Type your name to approve the plan.")
        doc = self.rules.approve(
            imp,
            actor,
            name,
            plan_fingerprint=bulkref.fingerprint(imp.plan_path),
            input_fingerprint=plan.fingerprint,
            target=self.target.name,
            summary=plan.summary,
            earlier=earlier,
        )
        approval = doc["approvals"][-1]
        self.record(
            imp,
            "approve",
            actor,
            {
                "name": approval["name"],
                "ownImport": approval["ownImport"],
                "approvals": len(doc["approvals"]),
                "required": doc["required"],
            },
        )
        log.info("import %s approved", imp.id)
        if not doc["complete"]:
            return _see(f"/imports/{imp.id}/review")
        return _see(f"/imports/{imp.id}/apply")

    # -- apply --------------------------------------------------------------------------------
    async def apply_page(self, request: Request) -> Response:
        imp = self._import(request)
        job = self.jobs.get("apply", imp.id)
        plan, current = self._plan_state(imp)
        return self.page(
            request,
            "apply.html",
            imp,
            active="apply",
            plan=plan,
            current=current,
            approval=self._approval(imp),
            run=imp.run(),
            job=job.snapshot() if job is not None else None,
            concurrency=self.settings.concurrency,
        )

    async def apply(self, request: Request) -> Response:
        imp = self._import(request)
        form = await self._form(request)
        plan, current = self._plan_state(imp)
        if self.jobs.running("plan", imp.id):
            raise HTTPException(409, "A new plan is being made: review and approve it, then apply.")
        if self._approval(imp) is None or plan is None:
            raise HTTPException(409, "Apply needs an approved plan: review and approve it first.")
        if not current:
            raise HTTPException(
                409, "The input changed since the plan was approved: plan and approve it again."
            )
        concurrency = min(max(_int(form.get("concurrency"), self.settings.concurrency), 1), 64)
        actor = self.people.actor(request)
        caller = self.caller(request)
        resumed = self.step(imp) in ("interrupted", "in doubt", "apply failed")

        def ended(state: str, details: dict[str, Any]) -> None:
            event = {"done": "apply finish", "interrupted": "apply stopped"}.get(state, "apply failed")
            self.record(imp, event, actor, {"state": state, **details})

        if self.jobs.start_apply(imp, concurrency, caller, ended) is None:
            raise HTTPException(409, "This import is being applied already.")
        self.record(imp, "apply resume" if resumed else "apply start", actor, {"concurrency": concurrency})
        log.info("import %s: apply started", imp.id)
        return _see(f"/imports/{imp.id}/apply")

    async def stop(self, request: Request) -> Response:
        imp = self._import(request)
        await self._form(request)
        if self.jobs.stop("apply", imp.id):
            self.record(imp, "apply stop", self.people.actor(request))
        return _see(f"/imports/{imp.id}/apply")

    async def progress(self, request: Request) -> Response:
        imp = self._import(request)
        job = self.jobs.get("apply", imp.id)
        if job is not None:
            return JSONResponse(self._shown_job(job.snapshot(), imp))
        run = imp.run() or {}
        state = run.get("state", "idle")
        return JSONResponse({"kind": "apply", "state": "interrupted" if state == "running" else state})

    # -- results ------------------------------------------------------------------------------
    async def results(self, request: Request) -> Response:
        imp = self._import(request)
        outcome = request.query_params.get("outcome") or None
        rows, page, pages = views.results_page(
            imp.results(), _int(request.query_params.get("page"), 1), outcome
        )
        return self.page(
            request,
            "results.html",
            imp,
            active="results",
            rows=rows,
            page=page,
            pages=pages,
            outcome=outcome,
            run=imp.run(),
            outcomes=[str(o) for o in bulkref.Outcome],
            runs=self.store.runs(imp),
        )

    async def results_file(self, request: Request) -> Response:
        imp = self._import(request)
        if not imp.results_path.is_file():
            raise HTTPException(404, "This import has no results yet.")
        self.record(imp, "download", self.people.actor(request), {"file": "results.xlsx"})
        stem = download_stem(imp.name)
        return FileResponse(imp.results_path, filename=f"{stem}.results.xlsx", media_type=XLSX)

    # -- export -------------------------------------------------------------------------------
    def _export_choices(self) -> dict[str, tuple[str, ...]]:
        return {
            "status": bulkref.allowed_values("referral_status"),
            "substatus": bulkref.allowed_values("referral_substatus"),
            "direction": bulkref.allowed_values("direction"),
            "type": bulkref.allowed_values("referral_type"),
        }

    async def export_page(self, request: Request) -> Response:
        return self.page(
            request,
            "export.html",
            active="export",
            choices=self._export_choices(),
            error=None,
            values=defaultdict(str),
        )

    async def export(self, request: Request) -> Response:
        form = await self._form(request)
        values = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
        values.pop("csrf", None)
        try:
            query = bulkref.compose_filter(
                status=form.getlist("status"),
                substatus=form.getlist("substatus"),
                direction=values.get("direction") or None,
                type=values.get("type") or None,
                since=values.get("since") or None,
                team_email=values.get("team_email") or None,
                engagement=values.get("engagement") or None,
                filter=values.get("filter") or None,
            )
            top = _int(values.get("top"), 0) if values.get("top") else None
            if top is not None and top < 1:
                raise ValueError("'At most' is a number of referrals, 1 or more")
        except ValueError as e:
            return self.page(
                request,
                "export.html",
                active="export",
                choices=self._export_choices(),
                error=f"{e}.",
                values=defaultdict(str, values),
            )
        # Partner Center's co-sell layout is a CSV file, as its bulk upload takes.
        layout = "partner-center" if values.get("layout") == "partner-center" else "template"
        suffix = ".csv" if values.get("format") == "csv" or layout != "template" else ".xlsx"
        export_id = self.store.new_export_id()
        out = self.store.export_path(export_id, suffix)
        orderby = values.get("orderby") or None
        caller = self.caller(request)
        self.jobs.start_export(
            export_id, out, {"filter": query, "orderby": orderby, "top": top, "layout": layout}, caller
        )
        return _see(f"/export/{export_id}")

    def _export_id(self, request: Request) -> str:
        export_id = request.path_params["eid"]
        if not self.store.valid_id(export_id):
            raise HTTPException(404, "There is no such export.")
        return export_id

    async def export_status(self, request: Request) -> Response:
        export_id = self._export_id(request)
        job = self.jobs.get("export", export_id)
        written = self.store.export_file(export_id)
        if job is None and written is None:
            raise HTTPException(404, "There is no such export.")
        return self.page(
            request,
            "export_status.html",
            active="export",
            export_id=export_id,
            job=job.snapshot() if job is not None else {"state": "done"},
            written=written,
        )

    async def export_progress(self, request: Request) -> Response:
        export_id = self._export_id(request)
        job = self.jobs.get("export", export_id)
        if job is None:
            state = "done" if self.store.export_file(export_id) is not None else "failed"
            return JSONResponse({"kind": "export", "state": state})
        return JSONResponse(self._shown_job(job.snapshot()))

    async def export_file(self, request: Request) -> Response:
        export_id = self._export_id(request)
        job = self.jobs.get("export", export_id)
        path = self.store.export_file(export_id)
        if path is None or (job is not None and job.running):
            raise HTTPException(404, "The export is not written yet.")
        media = XLSX if path.suffix == ".xlsx" else "text/csv"
        # The export's own id (its date, time and a random part): a second export of the day,
        # in a browser that replaces a file of the same name, does not overwrite the first.
        return FileResponse(path, filename=f"referrals-export-{export_id}{path.suffix}", media_type=media)

    # -- errors -------------------------------------------------------------------------------
    async def error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = (
            exc.detail if isinstance(exc, HTTPException) else "Something went wrong: see the server's log."
        )
        if status == 404 and not isinstance(exc, HTTPException):
            detail = "There is no such page."
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return self.render.page(request, "error.html", status_code=status, message=detail, status=status)


def _meta_policy(html: str) -> str:
    found = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    return found.group(1) if found else "default-src 'none'"


async def _upload(value: Any, suffixes: tuple[str, ...], what: str) -> tuple[bytes, str, str]:
    if not isinstance(value, UploadFile) or not value.filename:
        raise HTTPException(422, f"Choose a {what} to upload.")
    suffix = Path(value.filename).suffix.lower()
    if suffix not in suffixes:
        raise HTTPException(
            422,
            f"{display_name(value.filename, 'The file')} is not a {what}: give a {', '.join(suffixes)} file.",
        )
    data = await value.read()
    if not data:
        raise HTTPException(422, f"{display_name(value.filename, 'The file')} is empty.")
    return data, value.filename, suffix


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _see(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def create_app(settings: Settings) -> Any:
    """The ASGI application: the routes behind the guard (token, host, size, headers)."""
    app = App(settings)
    routes = [
        Route("/", app.start),
        Route("/template.{fmt:str}", app.template_file),
        Route("/imports", app.upload, methods=["POST"]),
        Route("/imports/{id}", app.open_import),
        Route("/imports/{id}/check", app.check),
        Route("/imports/{id}/input", app.replace_input, methods=["POST"]),
        Route("/imports/{id}/annotated.xlsx", app.annotated),
        Route("/imports/{id}/mapping", app.mappings.page, methods=["GET"]),
        Route("/imports/{id}/mapping", app.mappings.post, methods=["POST"]),
        Route("/imports/{id}/mapping/preview", app.mappings.preview_fragment, methods=["POST"]),
        Route("/imports/{id}/mapping.toml", app.mappings.download),
        Route("/imports/{id}/cells", app.cells.post, methods=["POST"]),
        Route("/imports/{id}/corrected", app.cells.corrected),
        Route("/imports/{id}/original", app.cells.original),
        Route("/imports/{id}/review", app.review),
        Route("/imports/{id}/plan", app.make_plan, methods=["POST"]),
        Route("/imports/{id}/plan.html", app.plan_html),
        Route("/imports/{id}/plan.json", app.plan_json),
        Route("/imports/{id}/plan-progress.json", app.plan_progress),
        Route("/imports/{id}/approve", app.approve, methods=["POST"]),
        Route("/imports/{id}/apply", app.apply_page, methods=["GET"]),
        Route("/imports/{id}/apply", app.apply, methods=["POST"]),
        Route("/imports/{id}/stop", app.stop, methods=["POST"]),
        Route("/imports/{id}/progress.json", app.progress),
        Route("/imports/{id}/results", app.results),
        Route("/imports/{id}/results.xlsx", app.results_file),
        Route("/export", app.export_page, methods=["GET"]),
        Route("/export", app.export, methods=["POST"]),
        Route("/export/{eid}", app.export_status),
        Route("/export/{eid}/progress.json", app.export_progress),
        Route("/export/{eid}/file", app.export_file),
        *oversight.routes(app),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    starlette = Starlette(
        routes=routes, exception_handlers={HTTPException: app.error, Exception: app.error, 404: app.error}
    )
    starlette.state.web = app
    guarded = security.Guard(
        app.people.gate(starlette),
        access_token=settings.access_token,
        port=settings.port,
        max_body=settings.max_upload,
        host=settings.host,
        public_url=settings.public_url,
    )
    guarded.web = app  # type: ignore[attr-defined]  # tests and the server reach the App through it
    return guarded
