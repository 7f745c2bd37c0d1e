"""Pages from Jinja2 templates, autoescaped: every value is text unless a template says otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

import bulkref
from bulkref.web import views
from bulkref.web.store import private_names

# The import's steps in order, with the page each is on.
STEPS = (("check", "Check"), ("review", "Review"), ("apply", "Approve and apply"), ("results", "Results"))
# How far each state of an import reaches in STEPS (index of the last step open to it).
REACHED = {
    "uploaded": 1,
    "planned": 2,
    "approved": 2,
    "applying": 2,
    "interrupted": 3,
    "in doubt": 3,
    "apply failed": 2,
    "applied": 3,
}


class Renderer:
    def __init__(
        self, csrf: Callable[[Request], str], target: Callable[[], bulkref.TargetInfo], home: Path
    ) -> None:
        self.csrf, self.target, self.home = csrf, target, home
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("bulkref.web", "templates"),
            autoescape=True,  # every template, whatever its name
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            steps=STEPS,
            reached=REACHED,
            short=views.short,
            version=bulkref.__version__,
        )

    def page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("imp", None)
        context.setdefault("step", None)
        context.setdefault("active", None)
        context.setdefault("csrf", self.csrf(request))  # bound to the session: see people.People.csrf
        context.setdefault("me", None)
        context.setdefault("team", False)
        context.setdefault("can_sign_in", False)
        html = self.env.get_template(template).render(request=request, target=self.target(), **context)
        # Messages from the library name files by their paths, and a CSV's sheet is its
        # file's (generated) name: every page names them as the user uploaded them.
        for path, shown in private_names(self.home, context["imp"]):
            html = html.replace(str(escape(path)), str(escape(shown)))
        return HTMLResponse(html, status_code=status_code)
