"""The mapping page: a CRM export mapped onto bulkref's fields in the browser.

An upload that is neither the template nor a layout bulkref reads as it is
comes here (``after_upload``), unless a mapping kept for the very same headers
is at hand (``kept_mappings``), which is used and said so. The page starts from
``suggest_mapping`` (or the import's own mapping, to edit it), shows each field
with its source column(s) and options, previews the first rows as they would be
read, and saves a mapping file: the import's (a corrected mapping replaces the
old one in the same import), downloadable, and kept for the next upload with
these headers. Everything is judged by the library (``load_mapping``,
``check_file``): the page never compiles a pattern nor decides a value.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

import bulkref
from bulkref.web import mapping_form, security, views, wording
from bulkref.web.kept_mappings import KeptMappings
from bulkref.web.store import Import, download_stem, private_names, write_json

log = logging.getLogger("bulkref.web")


class _App(Protocol):
    """What the page needs of ``bulkref.web.app.App`` (named here, not imported: the
    app imports this module)."""

    root: Path
    home: Path
    people: Any  # its csrf(request): the token is bound to the session
    store: Any
    jobs: Any
    render: Any

    def hide(self, text: str, imp: Import | None = None) -> str: ...
    def page(
        self, request: Request, template: str, imp: Import | None = None, **context: Any
    ) -> HTMLResponse: ...
    def _import(self, request: Request) -> Import: ...


PREVIEW_ROWS = 8
# A mapping form has a dozen inputs per field and one per distinct value mapped.
MAX_FORM_FIELDS = 6000
TOML = "application/toml"


@dataclass
class Preview:
    """The first rows of the export as the draft mapping reads them."""

    counts: dict[str, int] = field(default_factory=dict)
    notes: list[wording.SheetNote] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[views.GridRow] = field(default_factory=list)
    unusable: str | None = None


class MappingPages:
    def __init__(self, app: _App) -> None:
        self.app = app
        self.kept = KeptMappings(app.root)

    # -- helpers --------------------------------------------------------------------------------
    def _profile(self, imp: Import) -> Any:
        return bulkref.profile_export(imp.input)

    def _draft_file(self, imp: Import, text: str) -> Path:
        path = imp.folder / f"draft-{secrets.token_hex(4)}.mapping.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def _plain(self, text: str, path: Path, imp: Import) -> str:
        """A library message about the draft file, as the page says it: "mapping line 3"."""
        return self.app.hide(_said(text, path.name), imp)

    def preview(self, imp: Import, text: str) -> Preview:
        path = self._draft_file(imp, text)
        try:
            validated = bulkref.check_file(imp.input, mapping=path)
            grid = views.grid(validated)
        except bulkref.BulkrefError as e:
            return Preview(unusable=self._plain(str(e), path, imp))
        finally:
            path.unlink(missing_ok=True)
        # "draft-….mapping.toml line 4" is "mapping line 4" on the page.
        problems = [_renamed(p, path.name) for p in grid.sheet_problems]
        rows = grid.rows[:PREVIEW_ROWS]
        for r in rows:
            r.problems = [_renamed(p, path.name) for p in r.problems]
        return Preview(
            counts=grid.counts,
            notes=wording.sheet_notes(problems, mapped=True),
            headers=[_said(header, path.name) for _, header in grid.headers],
            rows=rows,
        )

    def _start(self, imp: Import, fresh: bool) -> tuple[mapping_form.Draft, str]:
        """The draft the page opens with, and where it comes from."""
        if not fresh and imp.mapping is not None:
            try:
                text = imp.mapping.read_text(encoding="utf-8-sig")
                return mapping_form.from_toml(text), "mapping"
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                pass  # a mapping that is not TOML: start from the suggestion, the error shows on Check
        return mapping_form.from_suggestion(bulkref.suggest_mapping(imp.input)), "suggestion"

    def _render(
        self,
        request: Request,
        imp: Import,
        draft: mapping_form.Draft,
        profile: Any,
        *,
        origin: str,
        preview: Preview | None,
        error: str | None = None,
        toml_text: str | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        title = f"{download_stem(imp.name)}.mapping.toml"
        rows = mapping_form.rows(draft, bulkref.mapping_fields(), profile)
        response = self.app.page(
            request,
            "mapping.html",
            imp,
            active="check",
            rows=rows,
            main_rows=[r for r in rows if r.mapped or r.required],
            other_rows=[r for r in rows if not (r.mapped or r.required)],
            draft=draft,
            profile=profile,
            origin=origin,
            preview=preview,
            error=error,
            toml_text=toml_text if toml_text is not None else mapping_form.to_toml(draft, title),
            date_formats=mapping_form.DATE_FORMATS,
            name_orders=mapping_form.NAME_ORDERS,
            row_rules=mapping_form.ROW_RULES,
            others=mapping_form.OTHERS,
            undecided=mapping_form.UNDECIDED,
            # The form's empty rows to add a skip rule and a pattern with.
            skips=[*draft.skips, {}],
            patterns=[*draft.patterns.items(), ("", "")],
        )
        response.status_code = status_code
        return response

    async def _form(self, request: Request) -> Any:
        form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
        security.check_csrf(form, self.app.people.csrf(request))
        return form

    # -- routes ---------------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        imp = self.app._import(request)
        fresh = request.query_params.get("fresh") == "1"

        def build() -> tuple[mapping_form.Draft, str, Any, Preview]:
            profile = self._profile(imp)
            draft, origin = self._start(imp, fresh)
            title = f"{download_stem(imp.name)}.mapping.toml"
            return draft, origin, profile, self.preview(imp, mapping_form.to_toml(draft, title))

        try:
            draft, origin, profile, preview = await run_in_threadpool(build)
        except bulkref.BulkrefError as e:
            raise HTTPException(422, self.app.hide(str(e), imp)) from None
        return self._render(request, imp, draft, profile, origin=origin, preview=preview)

    async def post(self, request: Request) -> Response:
        """The form, sent: ``action`` update (show it again, previewed), save, or
        toml (save the TOML typed in the text box)."""
        imp = self.app._import(request)
        form = await self._form(request)
        action = form.get("action") or "update"
        if self.app.jobs.running("apply", imp.id):
            raise HTTPException(409, "This import is being applied: stop it before changing its mapping.")
        title = f"{download_stem(imp.name)}.mapping.toml"
        typed = form.get("toml") if action == "toml" else None
        if isinstance(typed, str):
            text = typed.replace("\r\n", "\n")
            try:
                draft = mapping_form.from_toml(text)
            except tomllib.TOMLDecodeError:
                draft = mapping_form.Draft()
        else:
            draft = mapping_form.from_form(form)
            text = mapping_form.to_toml(draft, title)

        def work() -> tuple[Any, Preview, str | None]:
            profile = self._profile(imp)
            if action not in ("save", "toml"):
                return profile, self.preview(imp, text), None
            path = self._draft_file(imp, text)
            try:
                bulkref.load_mapping(path)
            except bulkref.MappingError as e:
                return profile, self.preview(imp, text), self._plain(str(e), path, imp)
            finally:
                path.unlink(missing_ok=True)
            self.save(imp, text, profile.headers)
            return profile, Preview(), None

        try:
            profile, preview, error = await run_in_threadpool(work)
        except bulkref.BulkrefError as e:
            raise HTTPException(422, self.app.hide(str(e), imp)) from None
        if action in ("save", "toml") and error is None:
            log.info("import %s: mapping saved", imp.id)
            return RedirectResponse(f"/imports/{imp.id}/check", status_code=303)
        return self._render(
            request,
            imp,
            draft,
            profile,
            origin="form",
            preview=preview,
            error=error,
            toml_text=text if typed is not None else None,
            status_code=422 if error else 200,
        )

    async def preview_fragment(self, request: Request) -> Response:
        """The preview alone, for the page's script to show while the form is edited."""
        imp = self.app._import(request)
        form = await self._form(request)
        draft = mapping_form.from_form(form)
        text = mapping_form.to_toml(draft, "preview")
        preview = await run_in_threadpool(self.preview, imp, text)
        html = self.app.render.env.get_template("mapping_preview.html").render(preview=preview, imp=imp)
        for path, shown in private_names(self.app.home, imp):
            html = html.replace(path, shown)
        return HTMLResponse(html)

    async def download(self, request: Request) -> Response:
        imp = self.app._import(request)
        if imp.mapping is None or not imp.mapping.is_file():
            raise HTTPException(404, "This import has no mapping yet: make one on its mapping page.")
        name = imp.mapping_name or f"{download_stem(imp.name)}.mapping.toml"
        return Response(
            imp.mapping.read_bytes(),
            media_type=TOML,
            headers={"content-disposition": f'attachment; filename="{download_stem(name)}.toml"'},
        )

    # -- the library's side ---------------------------------------------------------------------
    def save(self, imp: Import, text: str, headers: list[str]) -> Import:
        """``text`` as the import's mapping (replacing any: its plan and approval go
        with it), kept for the next upload with these headers."""
        name = imp.mapping_name or f"{download_stem(imp.name)}.mapping.toml"
        imp = self.app.store.set_mapping(imp, name, text.encode("utf-8"))
        meta = {k: v for k, v in imp.meta.items() if k != "mapping_kept"}
        write_json(imp.folder / "meta.json", meta)
        self.kept.keep(headers, name, text)
        return Import(imp.id, imp.folder, meta)

    def after_upload(self, imp: Import) -> str:
        """Where a new import without a mapping goes: its Check page, with a mapping
        kept for the same headers when there is one; the mapping page when the sheet
        is an export bulkref cannot read as it is."""
        try:
            profile = self._profile(imp)
        except bulkref.BulkrefError:
            return "check"  # the Check page says why the file cannot be read
        kept = self.kept.find(profile.headers)
        if kept is not None:
            imp = self.app.store.set_mapping(imp, kept.name, kept.text.encode("utf-8"))
            write_json(imp.folder / "meta.json", {**imp.meta, "mapping_kept": kept.saved or True})
            log.info("import %s: a kept mapping used", imp.id)
            return "check"
        if profile.template_columns * 2 >= max(1, len(profile.columns)):
            return "check"  # the template, perhaps with a column missing: Check says which
        try:
            validated = bulkref.check_file(imp.input)
        except bulkref.BulkrefError:
            return "check"
        missing = any(str(p.code) == "missing_columns" for p in validated.report.problems)
        return "mapping" if missing else "check"


def _renamed(problem: Any, name: str) -> Any:
    """``problem`` with the draft file's generated name said as "mapping"."""
    changes = {
        key: _said(getattr(problem, key), name)
        for key in ("message", "column")
        if isinstance(getattr(problem, key, None), str)
    }
    return dataclasses.replace(problem, **changes)


def _said(text: str, name: str) -> str:
    """A library text naming the draft file ``name``, as the page says it."""
    text = text.replace(f"The mapping {name}", "The mapping on this page")
    text = re.sub(rf"{re.escape(name)} line \d+ -> ", "one value -> ", text)  # a constant's column label
    return text.replace(name, "mapping")
