"""What the report says about the machine and the software measured."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import shutil
import ssl
import subprocess
import sys


def _command_version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "hyper"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}{' + uncommitted changes in hyper/' if dirty else ''}" if rev else "unknown"


def machine_details() -> list[tuple[str, str]]:
    """(label, value) pairs describing this machine and the software measured."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    pycurl_version = _package_version("pycurl")
    if pycurl_version != "not installed":
        libcurl = subprocess.run(
            [sys.executable, "-c", "import pycurl; print(pycurl.version)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
        # "PycURL/x libcurl/y OpenSSL/z ... nghttp2/w ...": the wheel bundles its own libcurl.
        wanted = [part for part in libcurl.split() if part.startswith(("libcurl/", "OpenSSL/", "nghttp2/"))]
        pycurl_version += f" ({' '.join(wanted) or '?'})"
    nginx = _command_version(["nginx", "-v"])
    return [
        ("date (UTC)", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("CPU", _cpu_model()),
        ("cores", f"{os.cpu_count()} ({affinity} usable)"),
        ("load average at start", load),
        ("OS", platform.platform()),
        ("Python", sys.version.split()[0] + f" ({platform.python_implementation()})"),
        ("OpenSSL (Python)", ssl.OPENSSL_VERSION),
        ("nginx", re.sub(r"^nginx version: ", "", nginx)),
        ("nghttpd", _command_version(["nghttpd", "--version"])),
        ("h2o", _command_version(["h2o", "--version"])),
        ("h2load", _command_version(["h2load", "--version"])),
        ("curl", _command_version(["curl", "--version"])),
        ("hyper", f"{_hyper_version()} (git {_git_revision()})"),
        ("h2 / hpack", f"{_package_version('h2')} / {_package_version('hpack')}"),
        ("httpx / httpcore", f"{_package_version('httpx')} / {_package_version('httpcore')}"),
        (
            "niquests / urllib3-future",
            f"{_package_version('niquests')} / {_package_version('urllib3-future')}",
        ),
        ("pycurl", pycurl_version),
    ]


def _hyper_version() -> str:
    try:
        import hyper

        return str(hyper.__version__)
    except ImportError:
        return "not importable"
