"""The request body: JSON, a form, multipart, a file or stdin.

Every file an item names is opened (or read) here, before any connection is
made, so a missing file is a usage error and nothing is sent.
"""

from __future__ import annotations

import json
import mimetypes
import os
import select
import stat
import sys
import uuid
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import urlencode

from ..common.body import file_length
from .items import DataField, FileField, RequestSpec
from .status import UsageError

#: Content types hyper sends for the ways of encoding data fields.
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
#: The ``accept`` header of JSON requests (HTTPie's).
JSON_ACCEPT = "application/json, */*;q=0.5"
#: Seconds without stdin data after which hyper says it is waiting for it.
STDIN_WAIT_WARNING = 10.0


@dataclass
class Body:
    """A request body, ready to send.

    ``data`` is bytes, or a binary file whose ``length`` bytes from its
    position when the body was made are the body (sent as they are read).
    """

    data: bytes | IO[bytes]
    length: int
    content_type: str | None
    #: Where the body came from, for messages.
    source: str
    _start: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            self._start = self.data.tell()

    @classmethod
    def of_bytes(cls, data: bytes, content_type: str | None, source: str) -> Body:
        """A body held in memory."""
        return cls(data, len(data), content_type, source)

    def rewind(self) -> None:
        """Be ready to send (or show) the body again, e.g. after a 307 redirect."""
        if not isinstance(self.data, bytes):
            self.data.seek(self._start)

    def close(self) -> None:
        """Close the file behind the body, if any."""
        if not isinstance(self.data, bytes):
            self.data.close()


def build_body(spec: RequestSpec, mode: str) -> Body | None:
    """The body the items describe; ``mode`` is ``json``, ``form`` or ``multipart``.

    Raises :class:`UsageError` for unreadable files, invalid JSON in
    ``name:=@file``, and combinations that have no meaning.
    """
    if spec.body_file is not None:
        if spec.data or spec.files:
            raise UsageError("an @file body and data fields (name=value, name@file) cannot be mixed")
        return open_body_file(spec.body_file)
    if spec.files and mode == "json":
        raise UsageError("file uploads (name@file) need --form or --multipart")
    if not (spec.data or spec.files or mode == "multipart"):
        return None
    fields = [_resolve(item) for item in spec.data]
    if mode == "json":
        document = RequestSpec(spec.explicit_method, spec.url, data=fields).json_document()
        return Body.of_bytes(json.dumps(document).encode("utf-8"), JSON_TYPE, "data fields")
    raw = [item.name for item in fields if item.raw]
    if raw:
        raise UsageError(f"raw JSON fields (name:=json) cannot be sent in a form: {', '.join(raw)}")
    pairs = [(item.name, str(item.value)) for item in fields]
    if mode == "multipart" or spec.files:
        return _multipart(pairs, spec.files)
    return Body.of_bytes(urlencode(pairs).encode("utf-8"), FORM_TYPE, "form fields")


def open_body_file(path: str) -> Body:
    """``@file``: the file, sent as it is read, its type guessed from its name.

    A file whose length cannot be known beforehand (a /proc or /sys file
    whose size is not its content's, a named pipe, ``/dev/stdin``) is read
    to its end first, as a piped stdin is: the body's length is then known,
    and ``-v`` can show it. A device with no end (``/dev/zero``) is a usage
    error, not a read until memory runs out.
    """
    handle = _open(path)
    try:
        length = file_length(handle)
        if length is not None:
            return Body(handle, length, _guess_type(path), path)
        if _endless_device(handle):
            handle.close()
            raise UsageError(
                f"@{path} is a device with no end; send a part of it, e.g. head -c 1024 {path} | hyper ..."
            )
        data = handle.read()
    except OSError as exc:
        handle.close()
        raise UsageError(f"@{path}: {exc.strerror or exc}") from None
    handle.close()
    return Body.of_bytes(data, _guess_type(path), path)


def _endless_device(handle: IO[bytes]) -> bool:
    """A character device other than a terminal (``/dev/zero``, ``/dev/urandom``): reading it never ends.

    A terminal ends its input at Ctrl-D, a pipe when its writer closes; these
    devices never do, and reading one to its end would only exhaust memory.
    """
    try:
        return stat.S_ISCHR(os.fstat(handle.fileno()).st_mode) and not handle.isatty()
    except (OSError, ValueError):
        return False


def read_stdin(stream: IO[bytes]) -> Body | None:
    """The body piped or redirected to stdin; ``None`` when stdin is empty.

    A regular file (``< file``) is sent as it is read; a pipe is read to its
    end first, so the body's length is known (and ``-v`` can show it).
    """
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        mode = 0
    # A regular file's own size, unless it says nothing (a /proc file: None).
    length = file_length(stream) if stat.S_ISREG(mode) else None
    if length is not None:
        return Body(stream, length, None, "stdin") if length > 0 else None
    _warn_when_stdin_is_silent(stream)
    data = stream.read()
    if not data:
        return None
    return Body.of_bytes(data, None, "stdin")


def _warn_when_stdin_is_silent(stream: IO[bytes]) -> None:
    """Say why hyper waits when a pipe on stdin stays silent (a script that forgot --ignore-stdin)."""
    if sys.platform == "win32":  # select() takes only sockets there
        return
    try:
        ready, _, _ = select.select([stream], [], [], STDIN_WAIT_WARNING)
    except (OSError, ValueError):  # not selectable (e.g. a test double): just read
        return
    if not ready:
        sys.stderr.write(
            f"hyper: warning: no data on stdin after {STDIN_WAIT_WARNING:g} s; still waiting for the body "
            "(use --ignore-stdin when stdin is not the body)\n"
        )
        sys.stderr.flush()


def _resolve(item: DataField) -> DataField:
    """Read the file of a ``name=@file`` or ``name:=@file`` field."""
    if item.path is None:
        return item
    with _open(item.path) as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{item.name}=@{item.path}: the file is not UTF-8 text") from None
    if not item.raw:
        return DataField(item.name, text, path=item.path)
    try:
        return DataField(item.name, json.loads(text), raw=True, path=item.path)
    except ValueError as exc:
        raise UsageError(f"{item.name}:=@{item.path}: the file is not JSON ({exc})") from None


def _open(path: str) -> IO[bytes]:
    try:
        return open(os.path.expanduser(path), "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path!r}: {exc.strerror or exc}") from None


def _guess_type(path: str) -> str | None:
    return mimetypes.guess_type(path)[0]


def _multipart(pairs: list[tuple[str, str]], files: list[FileField]) -> Body:
    """``multipart/form-data`` (RFC 7578), built in memory."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in pairs:
        out += _part_head(boundary, name, None, None)
        out += value.encode("utf-8") + b"\r\n"
    for upload in files:
        with _open(upload.path) as handle:
            content = handle.read()
        filename = os.path.basename(upload.path)
        content_type = upload.content_type or _guess_type(upload.path) or "application/octet-stream"
        out += _part_head(boundary, upload.name, filename, content_type)
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return Body.of_bytes(bytes(out), f"multipart/form-data; boundary={boundary}", "multipart form")


def _part_head(boundary: str, name: str, filename: str | None, content_type: str | None) -> bytes:
    disposition = f'form-data; name="{_quote(name)}"'
    if filename is not None:
        disposition += f'; filename="{_quote(filename)}"'
    lines = [f"--{boundary}", f"Content-Disposition: {disposition}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _quote(text: str) -> str:
    # RFC 7578 4.2: quotes and line breaks in names are percent-encoded, as browsers do.
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def stdin_has_body(ignore_stdin: bool) -> bool:
    """Whether stdin should be read as the body: not a terminal, and not ignored."""
    if ignore_stdin or sys.stdin is None:
        return False
    try:
        return not sys.stdin.isatty()
    except (ValueError, OSError):  # closed stdin
        return False
