"""Files the output goes to: ``--output`` and ``--download`` (with ``--continue``).

What is left on disk when a transfer does not complete (an error, or
Ctrl-C) follows one rule:

* ``--output FILE`` without ``--download``: the file is removed. It holds the
  output of a run that did not finish, and must not pass for a whole one.
* ``--download``: the bytes that arrived are kept, so ``--continue`` can
  resume, unless none arrived: a download never leaves an empty file behind
  (a resumed file that got no new bytes stays as it was).
"""

from __future__ import annotations

import mimetypes
import os
import re
from typing import IO
from urllib.parse import unquote, urlsplit

from .status import UsageError

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")
_FILENAME = re.compile(r"""filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))""", re.IGNORECASE)
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*([^']*)'[^']*'([^;\s]+)", re.IGNORECASE)


class OutputFile:
    """A file opened for writing before the request is sent.

    :param path: the file.
    :param resume: append to what is there (``--continue``) instead of truncating.
    :param keep_partial: keep an incomplete file (``--download``) instead of removing it.
    """

    def __init__(self, path: str, *, resume: bool = False, keep_partial: bool = False) -> None:
        self.path = path
        self.keep_partial = keep_partial
        try:
            self.handle: IO[bytes] = open(path, "ab" if resume else "wb")  # noqa: SIM115 - closed by finish/abandon
        except OSError as exc:
            raise UsageError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        #: Bytes in the file before this run (``--continue``).
        self.initial_size = self.handle.tell()
        #: Bytes written by this run.
        self.written = 0

    @classmethod
    def new_download(cls, name: str) -> OutputFile:
        """A new file in the current directory for ``--download`` without ``--output``.

        ``name`` gets ``-1``, ``-2``... before its extension when taken.
        """
        stem, ext = os.path.splitext(name)
        candidate, number = name, 0
        while True:
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                number += 1
                candidate = f"{stem}-{number}{ext}"
                continue
            except OSError as exc:
                raise OSError(f"cannot create {candidate!r}: {exc.strerror or exc}") from None
            os.close(fd)
            return cls(candidate, keep_partial=True)

    @property
    def size(self) -> int:
        """Bytes in the file now."""
        return self.initial_size + self.written

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``."""
        self.handle.write(chunk)
        self.written += len(chunk)

    def restart(self) -> None:
        """Start from an empty file (the server ignored the Range request)."""
        self.handle.seek(0)
        self.handle.truncate()
        self.initial_size = 0
        self.written = 0

    def finish(self) -> None:
        """The output is complete: close the file."""
        self.handle.close()

    def abandon(self) -> str:
        """The output is incomplete: close, then keep or remove by the module's rule.

        Returns a sentence saying what happened to the file.
        """
        self.handle.close()
        if self.keep_partial and self.size > 0:
            if self.written == 0:
                return f"{self.path} was left as it was ({self.size} bytes)"
            resume = f"--download --continue --output {self.path}"
            return f"{self.size} bytes kept in {self.path}; resume with {resume}"
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        return f"the incomplete {self.path} was removed"


def content_range_start(value: str | None) -> tuple[int, int | None] | None:
    """``(first byte, total length or None)`` of a ``content-range: bytes a-b/n`` value."""
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def unsatisfied_range_total(value: str | None) -> int | None:
    """The length a 416's ``content-range: bytes */n`` gives."""
    match = _UNSATISFIED_RANGE.fullmatch((value or "").strip())
    return int(match.group(1)) if match else None


def download_name(url: str, disposition: str | None, content_type: str | None) -> str:
    """The file name for ``--download``: content-disposition, else the URL path, else ``index``.

    Only the last path component of a name is used, so a server cannot
    write outside the current directory.
    """
    name = _disposition_name(disposition) if disposition else None
    if not name:
        path = unquote(urlsplit(url).path)
        name = path.rstrip("/").rpartition("/")[2]
    name = _safe(name or "") or "index"
    if "." not in name.lstrip(".") and content_type:
        extension = mimetypes.guess_extension(content_type.partition(";")[0].strip())
        if extension:
            name += extension
    return name


def _disposition_name(value: str) -> str | None:
    star = _FILENAME_STAR.search(value)
    if star:
        try:
            return unquote(star.group(2), encoding=star.group(1) or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            pass
    plain = _FILENAME.search(value)
    if plain:
        quoted, bare = plain.groups()
        return re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    return None


def _safe(name: str) -> str:
    name = name.replace("\\", "/").rpartition("/")[2]
    name = "".join(c for c in name if c.isprintable()).strip()
    # No hidden files: a server must not be able to drop ".bashrc" in here.
    return name.lstrip(".")
