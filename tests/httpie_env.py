"""Runs the real HTTPie ``http`` command with exactly one transport plugin.

Two plugins register a transport for ``https://``: hyper's own
(``hyper.httpie_plugin``, distribution ``hyper``) and the third-party
``httpie-http2`` (written for hyper 0.7). HTTPie mounts every
``httpie.plugins.transport.v1`` plugin on its session in entry-point order and
for one prefix the last one mounted wins, so with both installed which one a
test exercises would be an accident of installation order. :func:`isolated_httpie`
builds an environment in which HTTPie sees only the plugin distribution the
caller names:

* A ``meta`` directory goes first on ``PYTHONPATH``. The ``importlib.metadata``
  entry point scan (which HTTPie uses) takes only the first distribution of
  each name found along ``sys.path``, so metadata placed there hides the
  installed metadata of the same name.
* Keeping ``hyper``: ``meta`` gets ``hyper.egg-info`` from this tree's own
  ``setup.py egg_info``, so the entry points are the ones ``setup.py``
  declares (not whatever an older install of hyper recorded).
* Every other distribution with a transport plugin, ``hyper`` included when
  it is not the one kept, is hidden behind an empty ``.dist-info`` of the same
  name: a distribution without entry points.
* Only metadata is shadowed: this checkout comes right after ``meta`` on
  ``PYTHONPATH``, so ``import hyper`` (by httpie-http2 as much as by hyper's
  own plugin) still finds this tree's package, ahead of any editable install
  (whose finder sits at the end of ``sys.meta_path``).
* ``HTTPIE_CONFIG_DIR`` points at an empty config: no user ``plugins_dir``, no
  update check reaching out to the network.

:meth:`HTTPie.transport_plugins` and :meth:`HTTPie.debug_adapters` report what
HTTPie actually loaded in that environment, for the tests to assert on.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSPORT_GROUP = "httpie.plugins.transport.v1"
#: Bound on one ``http`` run; generous for a loaded 2-core machine.
RUN_TIMEOUT = 120.0

# Environment variables that would change what `http` does behind the tests' back.
_SCRUBBED = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTPIE_CONFIG_DIR",
    "PYTHONPATH",
    "PYTHONWARNINGS",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)

# Run in the controlled environment: what HTTPie's plugin manager loads, and
# where `import hyper` leads.
_PROBE = """
import json
import hyper
from httpie.plugins.registry import plugin_manager
plugin_manager.load_installed_plugins()
print(json.dumps({
    "transports": [f"{p.__module__}.{p.__qualname__}" for p in plugin_manager.get_transport_plugins()],
    "hyper_file": hyper.__file__,
}))
"""


def normalized(name: str) -> str:
    """A distribution name as the metadata lookup compares it (PEP 503, underscores)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def http_command() -> str:
    """The ``http`` script installed for this interpreter (where HTTPie lives)."""
    scripts = Path(sysconfig.get_path("scripts"))
    for name in ("http", "http.exe"):
        if (scripts / name).is_file():
            return str(scripts / name)
    found = shutil.which("http")
    if found is None:
        raise RuntimeError(
            f"HTTPie's `http` command is not installed for {sys.executable}; "
            "`pip install -e .[test]` installs it (the HTTPie tests must not be skipped)"
        )
    return found


@dataclass
class HTTPie:
    """Runs the real ``http`` command in an environment built by :func:`isolated_httpie`."""

    command: str
    env: dict[str, str]

    def argv(self, args: Sequence[str]) -> list[str]:
        return [self.command, "--ignore-stdin", *args]

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            self.argv(args),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=cwd,
            timeout=RUN_TIMEOUT,
        )

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )

    def with_env(self, **extra: str) -> HTTPie:
        """The same command and environment, plus ``extra`` variables."""
        return HTTPie(self.command, {**self.env, **extra})

    def probe(self) -> dict[str, object]:
        """HTTPie's plugin manager and ``import hyper`` as seen in this environment."""
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=self.env,
            timeout=RUN_TIMEOUT,
            # `python -c` puts its working directory first on sys.path: run it
            # in the (empty) config directory, not in a checkout whose
            # hyper.egg-info (left by `pip install -e .`) would declare hyper's
            # plugin ahead of the shadows.
            cwd=self.env["HTTPIE_CONFIG_DIR"],
        )
        if proc.returncode != 0:
            raise RuntimeError(f"probing HTTPie's plugins failed: {proc.stderr.decode()}")
        result: dict[str, object] = json.loads(proc.stdout)
        return result

    def debug_adapters(self) -> list[str]:
        """The transport plugin classes ``http --debug`` lists, as ``module.Class``."""
        # `http --debug` alone prints HTTPie's plugin manager and exits.
        proc = subprocess.run(
            [self.command, "--debug"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=self.env,
            timeout=RUN_TIMEOUT,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"`http --debug` failed: {proc.stderr.decode()}")
        debug = proc.stderr.decode()
        # pprint may wrap the list over several lines; [^\]] spans them.
        adapters = re.search(r"'adapters': \[([^\]]*)\]", debug)
        if adapters is None:
            raise RuntimeError(f"`http --debug` lists no adapters: {debug}")
        return re.findall(r"<class '([^']+)'>", adapters.group(1))


def _transport_distributions() -> set[str]:
    """Names of the installed distributions declaring an HTTPie transport plugin."""
    return {
        entry_point.dist.name
        for entry_point in importlib.metadata.entry_points(group=TRANSPORT_GROUP)
        if entry_point.dist is not None
    }


def _write_shadow(meta: Path, name: str) -> None:
    """An empty distribution called ``name``: hides the installed one's entry points."""
    shadow = meta / f"{normalized(name)}-0.dist-info"
    shadow.mkdir()
    (shadow / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0\n")


def isolated_httpie(base: Path, keep: str) -> HTTPie:
    """An ``http`` whose only transport plugin comes from distribution ``keep``.

    ``keep`` is ``"hyper"`` (this tree's plugin, entry points from its
    ``setup.py``) or an installed distribution such as ``"httpie-http2"``.
    ``base`` is an empty directory for the metadata and HTTPie's config.
    """
    meta = base / "meta"
    meta.mkdir()
    installed = _transport_distributions()
    if normalized(keep) == "hyper":
        # The entry points exactly as this tree's setup.py declares them.
        subprocess.run(
            [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(meta)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
        if not (meta / "hyper.egg-info" / "entry_points.txt").is_file():
            raise RuntimeError("setup.py egg_info wrote no hyper.egg-info/entry_points.txt")
    elif normalized(keep) not in {normalized(name) for name in installed}:
        raise RuntimeError(
            f"{keep} declares no {TRANSPORT_GROUP} plugin here; tools/run-tests.sh installs it"
        )
    # hyper is always in the hidden set unless kept: this checkout must not
    # contribute its plugin through any metadata, installed or not.
    hidden = {normalized(name): name for name in installed | {"hyper"}}
    hidden.pop(normalized(keep), None)
    for name in hidden.values():
        _write_shadow(meta, name)
    config = base / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"disable_update_warnings": True}))
    env = {
        key: value for key, value in os.environ.items() if key.lower() not in {s.lower() for s in _SCRUBBED}
    }
    env["HTTPIE_CONFIG_DIR"] = str(config)
    env["PYTHONPATH"] = os.pathsep.join([str(meta), str(ROOT)])
    return HTTPie(http_command(), env)
