"""``[METHOD] URL [ITEM ...]``: the words of a command line, as a request description.

Items follow HTTPie's syntax. The first unescaped separator in an item decides
its kind (at one position the longest separator wins, so ``:=`` beats ``:``),
and a backslash makes the next character literal (``a\\=b=c`` is the field
``a=b`` with value ``c``):

==================  =================================================
``Header:Value``    a request header; ``Header:`` removes a default one
``Header;``         a header with an empty value
``name==value``     a query parameter
``name=value``      a data field (a JSON string, or a form field)
``name:=json``      a raw JSON data field
``name=@file``      a data field whose value is the text of ``file``
``name:=@file``     a raw JSON data field read from ``file``
``name@file``       a file upload (``--form``: multipart); ``;type=mime`` sets its type
``@file``           the whole request body, read from ``file``
==================  =================================================

Nothing here touches the network; files named by items are only checked
and read later, by :mod:`hyper.cli.body`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .status import UsageError
from .target import normalise_url

# Standard methods are recognised in any case; others must be upper case
# (PROPFIND, PURGE, ...), so a host name like "localhost" is never a method.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_UPPER_METHOD = re.compile(r"[A-Z]+")
# Longest first: at the same position ":=@" wins over ":=" and ":", "==" over "=".
_SEPARATORS = (":=@", "=@", ":=", "==", "=", ":", ";", "@")
_FILE_TYPE = re.compile(r";type=([^;]+)$")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass
class DataField:
    """A ``name=value`` or ``name:=json`` field: ``raw`` for JSON values."""

    name: str
    value: Any
    raw: bool = False
    #: The file the value was read from (``name=@file``), for messages.
    path: str | None = None


@dataclass
class FileField:
    """A ``name@file`` upload."""

    name: str
    path: str
    content_type: str | None = None


@dataclass
class RequestSpec:
    """The request that the words of a command line describe."""

    #: The method given on the command line, or ``None`` (decided later: GET, or POST with a body).
    explicit_method: str | None
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: Lower-cased names of default headers the user removed with ``Header:``.
    unset_headers: set[str] = field(default_factory=set)
    query: list[tuple[str, str]] = field(default_factory=list)
    data: list[DataField] = field(default_factory=list)
    files: list[FileField] = field(default_factory=list)
    #: ``@file``: the whole body comes from this file.
    body_file: str | None = None

    @property
    def has_data(self) -> bool:
        """Whether items make a body (data fields, uploads or ``@file``)."""
        return bool(self.data or self.files or self.body_file is not None)

    @property
    def method(self) -> str:
        """The method to use when stdin gives no body: the explicit one, else GET or POST."""
        return self.explicit_method or ("POST" if self.has_data else "GET")

    def json_document(self) -> dict[str, Any]:
        """The data fields as one JSON object; a repeated name collects its values in a list."""
        document: dict[str, Any] = {}
        repeated: set[str] = set()
        for item in self.data:
            if item.name not in document:
                document[item.name] = item.value
            elif item.name in repeated:
                document[item.name].append(item.value)
            else:
                repeated.add(item.name)
                document[item.name] = [document[item.name], item.value]
        return document


def is_method(word: str) -> bool:
    """Whether ``word`` is taken as the METHOD rather than as the URL."""
    return word.upper() in METHODS or _UPPER_METHOD.fullmatch(word) is not None


def parse_words(words: Sequence[str]) -> RequestSpec:
    """Split ``[METHOD] URL [ITEM ...]`` into a :class:`RequestSpec`."""
    words = list(words)
    if not words:
        raise UsageError("no URL given")
    method: str | None = None
    if is_method(words[0]) and (len(words) > 1 or words[0].upper() in METHODS):
        method = words.pop(0).upper()
        if not words:
            # "hyper GET" is a forgotten URL, not a request to https://get/.
            raise UsageError(f"no URL given after the method {method}")
    url, items = words[0], words[1:]
    spec = RequestSpec(method, normalise_url(url))
    for item in items:
        add_item(spec, item)
    return spec


def split_item(item: str) -> tuple[str, str, str] | None:
    """``(name, separator, value)`` at the first unescaped separator, unescaping the name.

    ``None`` when the item holds no separator. The value is returned as
    written (backslashes kept only where they escape nothing).
    """
    name: list[str] = []
    index = 0
    while index < len(item):
        char = item[index]
        if char == "\\" and index + 1 < len(item):
            name.append(item[index + 1])
            index += 2
            continue
        for separator in _SEPARATORS:
            if item.startswith(separator, index):
                return "".join(name), separator, item[index + len(separator) :]
        name.append(char)
        index += 1
    return None


def add_item(spec: RequestSpec, item: str) -> None:
    """Add one item (see the module documentation) to ``spec``."""
    parts = split_item(item)
    if parts is None:
        raise UsageError(
            f"{item!r} is not an item: use Header:Value, name==value, name=value, name:=json, "
            "name@file or @file"
        )
    name, separator, value = parts
    if not name:
        if separator == "@" and value:
            if spec.body_file is not None:
                raise UsageError(f"{item!r}: only one @file body is allowed")
            spec.body_file = value
            return
        raise UsageError(f"{item!r} has no name before {separator!r}")
    if separator in (":", ";"):
        _add_header(spec, name, separator, value)
    elif separator == "==":
        spec.query.append((name, value))
    elif separator == "=":
        spec.data.append(DataField(name, value))
    elif separator == "=@":
        spec.data.append(DataField(name, None, path=value))
    elif separator == ":=":
        try:
            spec.data.append(DataField(name, json.loads(value), raw=True))
        except ValueError as exc:
            raise UsageError(f"{item!r}: the value after := is not JSON ({exc})") from None
    elif separator == ":=@":
        spec.data.append(DataField(name, None, raw=True, path=value))
    else:  # "@": a file upload
        content_type = None
        match = _FILE_TYPE.search(value)
        if match:
            content_type, value = match.group(1).strip(), value[: match.start()]
        if not value:
            raise UsageError(f"{item!r}: no file name after @")
        spec.files.append(FileField(name, value, content_type))


def _add_header(spec: RequestSpec, name: str, separator: str, value: str) -> None:
    if not _HEADER_NAME.fullmatch(name):
        raise UsageError(f"invalid header name {name!r}")
    if any(c in value for c in "\r\n\x00"):
        raise UsageError(f"header {name!r}: CR, LF and NUL are not allowed in values")
    value = value.strip()
    if separator == ";":
        if value:
            raise UsageError(
                f"'{name};{value}': 'Header;' sends an empty value (did you mean {name}:{value}?)"
            )
        spec.headers.append((name, ""))
    elif value:
        spec.headers.append((name, value))
    else:
        # "Header:" removes a header hyper would add (HTTPie's convention).
        spec.unset_headers.add(name.lower())
