"""A transport adapter that lets ``requests`` speak HTTP/2 through hyper.

::

    import requests
    from hyper.contrib import HTTP20Adapter

    session = requests.Session()
    session.mount("https://", HTTP20Adapter())
    print(session.get("https://example.org/").status_code)

``requests`` is an optional dependency: ``pip install hyper[requests]``.

The package has one module per job: :mod:`~hyper.contrib.adapter` (the
adapter), :mod:`~hyper.contrib.pool` (connections by site, TLS contexts,
proxies) and :mod:`~hyper.contrib.raw` (``response.raw``). What users import
is importable from ``hyper.contrib`` itself, as in hyper 0.7; the interfaces
the modules use between them (``AdapterConnection``, ``SiteKey``...) stay in
their modules.
"""

from __future__ import annotations

try:
    import requests  # noqa: F401 - checked here so every submodule can rely on it
except ImportError as exc:  # pragma: no cover - exercised only without requests
    raise ImportError("hyper.contrib needs the 'requests' package: pip install hyper[requests]") from exc

# _check_timeout, _proxy_kwargs and _OriginalResponse: private names of the
# one-module hyper.contrib that the tests import from here.
from .adapter import HTTP20Adapter, _check_timeout  # noqa: F401
from .pool import CertArg, TimeoutArg, VerifyArg, proxy_headers_for, select_proxy
from .pool import proxy_kwargs as _proxy_kwargs  # noqa: F401
from .raw import RawResponse, _OriginalResponse  # noqa: F401

__all__ = ["HTTP20Adapter", "RawResponse", "proxy_headers_for", "select_proxy"]
__all__ += ["CertArg", "TimeoutArg", "VerifyArg"]
