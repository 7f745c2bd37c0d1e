"""The service's error answer: an HTTP status plus ``{"error": {"code", "message", "target"}}``."""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    """A refusal the sandbox answers with the documented error body.

    ``target`` names what was wrong: the JSON path of a body field
    (``customerProfile.address.country``), a header (``If-Match``) or a query
    option (``$filter``), so that a client can point at the bad cell.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.code, self.message, self.target)


def error_body(code: str, message: str, target: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "target": target}
    return json.dumps({"error": error}, ensure_ascii=False, separators=(",", ":")).encode()


def invalid(message: str, target: str | None = None) -> ApiError:
    """400 invalidRequest, the answer to every rule a body or a query breaks."""
    return ApiError(400, "invalidRequest", message, target)


def not_found(referral_id: str) -> ApiError:
    return ApiError(404, "itemNotFound", f"Referral {referral_id} was not found.", "id")
