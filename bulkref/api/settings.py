"""The names of the environment variables that choose what bulkref calls and how it
signs in, and their defaults: read by the library, shown in the command line's help,
which must print them without importing MSAL or httpx."""

from __future__ import annotations

RESOURCE = "https://api.partner.microsoft.com"
USER_SCOPE = f"{RESOURCE}/user_impersonation"
APP_SCOPE = f"{RESOURCE}/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_TENANT = "organizations"

ENV_API_URL = "BULKREF_API_URL"
ENV_ACCESS_TOKEN = "BULKREF_ACCESS_TOKEN"
ENV_AUTHORITY = "BULKREF_AUTHORITY"
ENV_TENANT_ID = "BULKREF_TENANT_ID"
ENV_CLIENT_ID = "BULKREF_CLIENT_ID"
ENV_CLIENT_SECRET = "BULKREF_CLIENT_SECRET"
ENV_USERNAME = "BULKREF_USERNAME"
ENV_PASSWORD = "BULKREF_PASSWORD"
