"""https for the sandbox: a throwaway certificate authority and a loopback server certificate.

MSAL signs in over https only (it refuses an ``http://`` authority outright), so
a sandbox that plays the identity provider must speak TLS. ``trustme`` makes a
fresh CA and a certificate for 127.0.0.1, ::1 and localhost in memory; they are
written to a private temporary folder (uvicorn loads a certificate from files),
and clients trust ``ca_file`` (requests' ``verify=``, httpx's ``verify=``, or
``SSL_CERT_FILE`` for both bulkref's API client and its sign-in).
"""

from __future__ import annotations

import atexit
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class LoopbackCertificate:
    """PEM files of one throwaway CA and of the server certificate it signed."""

    folder: Path
    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls) -> LoopbackCertificate:
        import trustme  # only a TLS sandbox needs it

        ca = trustme.CA(organization_name="bulkref sandbox")
        leaf = ca.issue_cert(*LOOPBACK_NAMES)
        # mkdtemp makes the folder 0700: the key is throwaway, but nobody else needs it.
        folder = Path(tempfile.mkdtemp(prefix="bulkref-sandbox-tls-"))
        made = cls(folder, folder / "sandbox-ca.pem", folder / "sandbox-cert.pem", folder / "sandbox-key.pem")
        ca.cert_pem.write_to_path(str(made.ca_file))
        leaf.private_key_pem.write_to_path(str(made.key_file))
        with made.cert_file.open("wb") as out:
            for blob in leaf.cert_chain_pems:
                out.write(blob.bytes())
        # Removed on exit even when nobody calls remove() (an embedded sandbox
        # left running until the interpreter ends, a test that fails half-way).
        atexit.register(made.remove)
        return made

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this CA only (for httpx's ``verify=``)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        atexit.unregister(self.remove)
