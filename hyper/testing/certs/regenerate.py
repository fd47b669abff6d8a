"""Regenerate the throw-away TLS material used by :mod:`hyper.testing`.

Run from anywhere (needs ``trustme``, which is *not* a runtime dependency)::

    python hyper/testing/certs/regenerate.py

It writes, next to this script:

``ca.pem``
    A self-signed "hyper.testing" CA certificate. Clients trust this.
``server.pem``
    The server's certificate chain: a leaf for ``localhost``, ``127.0.0.1``
    and ``::1`` signed directly by the CA (so the chain is just the leaf).
``server.key``
    The leaf's private key, unencrypted.

WARNING: these files are committed to a public repository and shipped in the
package, so the private keys are public. They are only good for tests against
servers on localhost. Never trust ``ca.pem`` anywhere else (don't add it to a
system trust store).

trustme's default validity runs from 2000-01-01 to 3000-01-01, so the files
should never need regenerating for expiry; rerun this only to change the
identities or key types. The CA's private key is deliberately not saved.
"""

from __future__ import annotations

from pathlib import Path

import trustme

HERE = Path(__file__).resolve().parent
IDENTITIES = ("localhost", "127.0.0.1", "::1")


def main() -> None:
    """Generate a new CA and leaf and write them next to this script."""
    org = "hyper.testing (localhost only; private key is public)"
    ca = trustme.CA(organization_name=org)
    leaf = ca.issue_cert(*IDENTITIES, common_name="localhost", organization_name=org)
    ca.cert_pem.write_to_path(str(HERE / "ca.pem"))
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    (HERE / "server.pem").write_bytes(chain)
    leaf.private_key_pem.write_to_path(str(HERE / "server.key"))
    print(f"wrote ca.pem, server.pem, server.key in {HERE}")


if __name__ == "__main__":
    main()
