"""bulkref: declarative bulk import of Partner Center referrals from spreadsheets.

The public API: what the command line and the web app call, and what a Python
user calls directly. Each stage is a subpackage (``bulkref.spec``,
``bulkref.sheets``, ``bulkref.mapping``, ``bulkref.validation``, ``bulkref.api``,
``bulkref.plan``, ``bulkref.apply``, ``bulkref.export``); the names below are
the stable surface over them. They load on first use, so that ``bulkref
--help`` does not import pandas, pandera and httpx.

::

    import bulkref

    checked = bulkref.check_file("deals.xlsx")            # read + validate
    plan = bulkref.make_plan("deals.xlsx", sandbox=True)  # dry run against the sandbox
    run = bulkref.apply_input("deals.xlsx", sandbox=True, confirm=lambda plan, resumed: True)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_PUBLIC: dict[str, str] = {
    # spec
    "allowed_values": "bulkref.spec.enums",
    # sheets
    "write_template": "bulkref.sheets.template",
    "correct_cells": "bulkref.sheets.corrections",
    "CellEdit": "bulkref.sheets.corrections",
    # mapping
    "load_mapping": "bulkref.mapping.file",
    "suggest_mapping": "bulkref.mapping.suggest",
    "mapping_fields": "bulkref.mapping.catalog",
    "profile_export": "bulkref.mapping.catalog",
    # validation
    "check_file": "bulkref.validation.check",
    "annotate": "bulkref.validation.annotate",
    "validation_text": "bulkref.validation.report",
    # api
    "describe_target": "bulkref.api.target",
    "TargetInfo": "bulkref.api.target",
    "data_dir": "bulkref.files",
    "Caller": "bulkref.api.target",
    "BrowserSignIn": "bulkref.api.browser_signin",
    "Person": "bulkref.api.browser_signin",
    # plan
    "make_plan": "bulkref.plan.make",
    "fingerprint": "bulkref.plan.make",
    "why_stale": "bulkref.plan.make",
    "Plan": "bulkref.plan.model",
    "RowPlan": "bulkref.plan.model",
    "plan_text": "bulkref.plan.review",
    "plan_html": "bulkref.plan.review",
    "review_row": "bulkref.plan.review",
    "row_search_text": "bulkref.plan.review",
    "deal_fields": "bulkref.plan.review",
    "run_doctor": "bulkref.plan.doctor",
    "Doctor": "bulkref.plan.doctor",
    # apply
    "apply_input": "bulkref.apply.run",
    "rebuild_results": "bulkref.apply.record",
    "RowResult": "bulkref.apply.outcome",
    "Outcome": "bulkref.apply.outcome",
    "summarize": "bulkref.apply.outcome",
    "Tally": "bulkref.apply.outcome",
    # export
    "export_referrals": "bulkref.export.run",
    "compose_filter": "bulkref.export.query",
    "get_referral": "bulkref.export.get",
    # files
    "atomic_write": "bulkref.files",
    # problems, and every error a user can meet (bulkref.errors)
    "Problem": "bulkref.problems",
    "ProblemCode": "bulkref.problems",
    "Report": "bulkref.problems",
    "Severity": "bulkref.problems",
    "BulkrefError": "bulkref.errors",
    "UnusableFile": "bulkref.errors",
    "NoSuchSheet": "bulkref.errors",
    "UnreadablePlan": "bulkref.errors",
    "UnwritableOutput": "bulkref.errors",
    "BadOption": "bulkref.errors",
    "NoTerminal": "bulkref.errors",
    "DataDirError": "bulkref.errors",
    "MappingError": "bulkref.errors",
    "TaxonomyError": "bulkref.errors",
    "BadTarget": "bulkref.errors",
    "NoCredentials": "bulkref.errors",
    "AuthError": "bulkref.errors",
    "BadSettings": "bulkref.errors",
    "SignInRefused": "bulkref.errors",
    "NotSignedIn": "bulkref.errors",
    "ApiError": "bulkref.errors",
    "Unauthenticated": "bulkref.errors",
    "Forbidden": "bulkref.errors",
    "NotFound": "bulkref.errors",
    "Conflict": "bulkref.errors",
    "PreconditionFailed": "bulkref.errors",
    "InvalidRequest": "bulkref.errors",
    "Throttled": "bulkref.errors",
    "ServerError": "bulkref.errors",
    "ServiceUnavailable": "bulkref.errors",
    "Unreachable": "bulkref.errors",
    "IncompleteAnswer": "bulkref.errors",
    "JournalError": "bulkref.errors",
    "JournalInUse": "bulkref.errors",
    "StalePlan": "bulkref.errors",
    "ReferralNotFound": "bulkref.errors",
    "ConflictError": "bulkref.errors",
}

# Written out, not built from _PUBLIC: a type checker reads only a literal __all__,
# and a name outside it is no re-export under mypy --strict (ours or a user's).
__all__ = [
    "ApiError",
    "AuthError",
    "BadOption",
    "BadSettings",
    "BadTarget",
    "BrowserSignIn",
    "BulkrefError",
    "Caller",
    "CellEdit",
    "Conflict",
    "ConflictError",
    "DataDirError",
    "Doctor",
    "Forbidden",
    "IncompleteAnswer",
    "InvalidRequest",
    "JournalError",
    "JournalInUse",
    "MappingError",
    "NoCredentials",
    "NoSuchSheet",
    "NoTerminal",
    "NotFound",
    "NotSignedIn",
    "Outcome",
    "Person",
    "Plan",
    "PreconditionFailed",
    "Problem",
    "ProblemCode",
    "ReferralNotFound",
    "Report",
    "RowPlan",
    "RowResult",
    "ServerError",
    "ServiceUnavailable",
    "Severity",
    "SignInRefused",
    "StalePlan",
    "Tally",
    "TargetInfo",
    "TaxonomyError",
    "Throttled",
    "Unauthenticated",
    "Unreachable",
    "UnreadablePlan",
    "UnusableFile",
    "UnwritableOutput",
    "__version__",
    "allowed_values",
    "annotate",
    "apply_input",
    "atomic_write",
    "check_file",
    "compose_filter",
    "correct_cells",
    "data_dir",
    "deal_fields",
    "describe_target",
    "export_referrals",
    "fingerprint",
    "get_referral",
    "load_mapping",
    "make_plan",
    "mapping_fields",
    "plan_html",
    "plan_text",
    "profile_export",
    "rebuild_results",
    "review_row",
    "row_search_text",
    "run_doctor",
    "suggest_mapping",
    "summarize",
    "validation_text",
    "why_stale",
    "write_template",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'bulkref' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from bulkref.api.browser_signin import BrowserSignIn, Person
    from bulkref.api.target import Caller, TargetInfo, describe_target
    from bulkref.apply.outcome import Outcome, RowResult, Tally, summarize
    from bulkref.apply.record import rebuild_results
    from bulkref.apply.run import apply_input
    from bulkref.errors import (
        ApiError,
        AuthError,
        BadOption,
        BadSettings,
        BadTarget,
        BulkrefError,
        Conflict,
        ConflictError,
        DataDirError,
        Forbidden,
        IncompleteAnswer,
        InvalidRequest,
        JournalError,
        JournalInUse,
        MappingError,
        NoCredentials,
        NoSuchSheet,
        NoTerminal,
        NotFound,
        NotSignedIn,
        PreconditionFailed,
        ReferralNotFound,
        ServerError,
        ServiceUnavailable,
        SignInRefused,
        StalePlan,
        TaxonomyError,
        Throttled,
        Unauthenticated,
        Unreachable,
        UnreadablePlan,
        UnusableFile,
        UnwritableOutput,
    )
    from bulkref.export.get import get_referral
    from bulkref.export.query import compose_filter
    from bulkref.export.run import export_referrals
    from bulkref.files import atomic_write, data_dir
    from bulkref.mapping.catalog import mapping_fields, profile_export
    from bulkref.mapping.file import load_mapping
    from bulkref.mapping.suggest import suggest_mapping
    from bulkref.plan.doctor import Doctor, run_doctor
    from bulkref.plan.make import fingerprint, make_plan, why_stale
    from bulkref.plan.model import Plan, RowPlan
    from bulkref.plan.review import deal_fields, plan_html, plan_text, review_row, row_search_text
    from bulkref.problems import Problem, ProblemCode, Report, Severity
    from bulkref.sheets.corrections import CellEdit, correct_cells
    from bulkref.sheets.template import write_template
    from bulkref.spec.enums import allowed_values
    from bulkref.validation.annotate import annotate
    from bulkref.validation.check import check_file
    from bulkref.validation.report import validation_text
