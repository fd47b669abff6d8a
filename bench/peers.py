"""Installing the Python peers (httpx, niquests, pycurl) and the C tools' presence."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from bench import external
from bench.config import ALL_CLIENTS


def log(message: str) -> None:
    """Progress output (stderr, so stdout keeps only the report)."""
    print(message, file=sys.stderr, flush=True)


#: What ``pip install`` gets for each peer, and the modules that prove it is there.
PEER_PACKAGES: dict[str, tuple[list[str], list[str]]] = {
    "httpx": (["httpx[http2]>=0.28,<0.29"], ["httpx", "h2"]),
    "niquests": (["niquests~=3.21"], ["niquests"]),
    "pycurl": (["pycurl"], ["pycurl"]),
}
#: Seconds a ``pip install`` may take.
INSTALL_TIMEOUT = 600


def _importable(modules: list[str]) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


def install_peers(clients: list[str], allow_install: bool) -> dict[str, str]:
    """pip-install the missing Python peers; return {client: why unavailable}."""
    missing: dict[str, str] = {}
    for client in clients:
        if client not in PEER_PACKAGES:
            continue
        requirements, modules = PEER_PACKAGES[client]
        if _importable(modules):
            continue
        if not allow_install:
            missing[client] = "not installed"
            continue
        log(f"installing {' '.join(requirements)} ...")
        argv = [sys.executable, "-m", "pip", "install", "--quiet", *requirements]
        env = dict(os.environ)
        if client == "niquests":
            # urllib3-future's wheel ships a .pth that replaces urllib3 for the
            # whole environment; built from source with this variable set it
            # installs only as urllib3_future (niquests' documented
            # "cohabitation" install), so requests & co keep the real urllib3.
            env["URLLIB3_NO_OVERRIDE"] = "1"
            argv += ["--no-binary", "urllib3-future"]
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            missing[client] = "install timed out"
            continue
        importlib.invalidate_caches()
        if proc.returncode != 0 or not _importable(modules):
            log(f"  failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
            if client == "pycurl":
                # No wheel for this platform: pip builds from source.
                log(
                    "  (pycurl without a wheel needs libcurl's headers: "
                    "apt-get install libcurl4-openssl-dev libssl-dev)"
                )
            missing[client] = "not installed"
    return missing


def available_clients(requested: list[str], allow_install: bool) -> tuple[list[str], dict[str, str]]:
    """The requested clients in column order, and why some cannot run."""
    clients = [c for c in ALL_CLIENTS if c in requested]
    unavailable = install_peers(clients, allow_install)
    for tool in ("h2load", "curl"):
        if tool in clients and not external.available(tool):
            unavailable[tool] = "not installed"
    return clients, unavailable
