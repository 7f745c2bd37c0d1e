"""A bad cell fixed on the Check page.

The fix goes into a corrected copy of the upload (``bulkref.correct_cells``):
the upload itself is kept as it came, the copy becomes what the import reads
(and is offered for download), and each fix is written into the import's
record (``meta.json``: ``edits``, with the cell, the old and the new text and
when). The page is checked again at once: the form's answer is the Check page,
at the row that was fixed. A plan or approval of the file before the fix is of
another file, so both go, as when a corrected file is uploaded.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

import bulkref
from bulkref.web.store import Import, download_stem, now, write_json

log = logging.getLogger("bulkref.web")


class _App(Protocol):
    """What the fixes need of ``bulkref.web.app.App`` (named here, not imported: the
    app imports this module)."""

    store: Any
    jobs: Any

    def hide(self, text: str, imp: Import | None = None) -> str: ...
    def _import(self, request: Request) -> Import: ...
    async def _form(self, request: Request) -> Any: ...


_LETTER = re.compile(r"^[A-Z]{1,3}$")
MAX_CELL = 32767  # Excel's limit for one cell's text
MEDIA = {".csv": "text/csv", ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class CellFixes:
    def __init__(self, app: _App) -> None:
        self.app = app

    def fix(
        self, imp: Import, row: int, letter: str, header: str, sheet: str | None, value: str, old: str
    ) -> Import:
        """``imp`` with the cell at ``letter``/``row`` set to ``value`` in a corrected copy;
        ``old`` is the text the page showed, for the record."""
        meta = dict(imp.meta)
        suffix = imp.input.suffix
        if not meta.get("original"):  # the upload, kept as it came before the first fix
            original = f"original-{secrets.token_hex(6)}{suffix}"
            shutil.copyfile(imp.input, imp.folder / original)
            meta.update(original=original, original_name=imp.name)
        corrected = f"input-{secrets.token_hex(6)}{suffix}"
        bulkref.correct_cells(
            imp.input, [bulkref.CellEdit(row, letter, value)], imp.folder / corrected, sheet=sheet
        )
        if imp.meta.get("input") != meta.get("original"):
            imp.input.unlink(missing_ok=True)
        edit = {"row": row, "column": letter, "header": header, "old": old, "new": value, "at": now()}
        meta.update(input=corrected, updated=now(), edits=[*meta.get("edits", []), edit])
        for stale in (imp.plan_path, imp.approval_path, imp.annotated_path):
            stale.unlink(missing_ok=True)
        self.app.store.forget_run(imp)
        write_json(imp.folder / "meta.json", meta)
        return Import(imp.id, imp.folder, meta)

    # -- routes ---------------------------------------------------------------------------------
    async def post(self, request: Request) -> Response:
        imp = self.app._import(request)
        form = await self.app._form(request)
        if self.app.jobs.running("apply", imp.id):
            raise HTTPException(409, "This import is being applied: stop it before changing its cells.")
        letter = str(form.get("letter") or "").upper()
        row = _number(form.get("row"))
        value = form.get("value")
        if not _LETTER.match(letter) or row is None or row < 2 or not isinstance(value, str):
            raise HTTPException(422, "That cell cannot be corrected: reload the Check page and try again.")
        if len(value) > MAX_CELL:
            raise HTTPException(422, f"A cell holds at most {MAX_CELL:,} characters.")
        sheet = form.get("sheet") if imp.input.suffix.lower() != ".csv" else None
        header = str(form.get("header") or letter)[:200]
        old = str(form.get("old") or "")[:MAX_CELL]
        try:
            await run_in_threadpool(
                self.fix, imp, row, letter, header, str(sheet) if sheet else None, value, old
            )
        except bulkref.BulkrefError as e:
            raise HTTPException(422, self.app.hide(str(e), imp)) from None
        log.info("import %s: cell %s%s corrected", imp.id, letter, row)
        back = str(form.get("back") or "")
        query = back if re.fullmatch(r"[a-z0-9=&]*", back) else ""
        return RedirectResponse(
            f"/imports/{imp.id}/check{'?' + query if query else ''}#row-{row}", status_code=303
        )

    async def corrected(self, request: Request) -> Response:
        """The corrected copy (the file the import reads now)."""
        imp = self.app._import(request)
        if not imp.meta.get("edits"):
            raise HTTPException(404, "No cell of this import was corrected in the page.")
        suffix = imp.input.suffix.lower()
        return FileResponse(
            imp.input,
            filename=f"{download_stem(imp.name)}.corrected{suffix}",
            media_type=MEDIA.get(suffix, XLSX),
        )

    async def original(self, request: Request) -> Response:
        imp = self.app._import(request)
        kept = imp.meta.get("original")
        if not kept:
            raise HTTPException(404, "No cell of this import was corrected in the page.")
        suffix = imp.input.suffix.lower()
        return FileResponse(
            imp.folder / str(kept),
            filename=f"{download_stem(imp.name)}{suffix}",
            media_type=MEDIA.get(suffix, XLSX),
        )


def _number(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
