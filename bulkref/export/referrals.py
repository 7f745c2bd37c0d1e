"""``bulkref export`` and ``bulkref get`` under the names they have always had.

Each job has its module: the query (``bulkref.export.query``), the export run
(``bulkref.export.run``), the spool (``bulkref.export.spool``), the file in the
template's shape (``bulkref.export.sheet``) and ``get``'s referral
(``bulkref.export.get``). This one gathers their names for the code that
imports them from here.
"""

from __future__ import annotations

from bulkref.export.get import (
    ReferralNotFound,
    ReferralView,
    get_referral,
    read_referral,
    referral_json,
    referral_text,
)
from bulkref.export.progress import ProgressCallback
from bulkref.export.query import compose_filter, odata_datetime
from bulkref.export.rows import fit_deal_type
from bulkref.export.run import (
    FORMATS,
    LAYOUTS,
    ExportResult,
    check_output,
    default_path,
    export_from,
    export_referrals,
)
from bulkref.export.sheet import (
    CHUNK_ROWS,
    CellWriters,
    XlsxSkeleton,
    cell_styles,
    write_export,
    xlsx_skeleton,
)
from bulkref.export.spool import SPOOL_LOCK, SPOOL_PREFIX, Spool, spool_folder, sweep_spools

# The cell writers' name before they were public (bulkref.export.sheet).
_CellWriters = CellWriters

__all__ = [
    "CHUNK_ROWS",
    "FORMATS",
    "LAYOUTS",
    "SPOOL_LOCK",
    "SPOOL_PREFIX",
    "CellWriters",
    "ExportResult",
    "ProgressCallback",
    "ReferralNotFound",
    "ReferralView",
    "Spool",
    "XlsxSkeleton",
    "cell_styles",
    "check_output",
    "compose_filter",
    "default_path",
    "export_from",
    "export_referrals",
    "fit_deal_type",
    "get_referral",
    "odata_datetime",
    "read_referral",
    "referral_json",
    "referral_text",
    "spool_folder",
    "sweep_spools",
    "write_export",
    "xlsx_skeleton",
]
