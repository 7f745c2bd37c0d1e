"""bulkref: declarative bulk import of Partner Center referrals from spreadsheets."""

__version__ = "0.1.0"
