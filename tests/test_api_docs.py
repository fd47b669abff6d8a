"""docs/api.rst documents every public name of the connection and response classes.

Parts of these classes live in mixins in other modules, so api.rst names each
member explicitly, in the order a program uses them; a method added to a
mixin would otherwise be missing from the reference without anyone noticing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hyper

API = Path(__file__).resolve().parent.parent / "docs" / "api.rst"

#: Public calls that are not for users, and where they are documented instead.
#: ``docs/design.rst`` describes them as the documented-internal interface
#: between the connection classes, :class:`hyper.HTTPConnection` and
#: :mod:`hyper.negotiation`, and the call by which a connection tells its
#: response where the request went.
INTERNAL = {
    "HTTP20Connection": {"adopt", "adopt_upgraded", "new_core"},
    "HTTP11Connection": {"adopt", "detach_if_switched", "request_offering_upgrade"},
    "HTTP20Response": {"record_request"},
    "HTTP11Response": {"record_request"},
}

CLASSES = ["HTTPConnection", "HTTP20Connection", "HTTP11Connection", "HTTP20Response", "HTTP11Response"]

_CLASS = re.compile(r"^\.\. autoclass:: hyper\.(\w+)")
_AUTO = re.compile(r"^\s+\.\. auto(?:method|property|attribute):: (\w+)\s*$")
_HANDWRITTEN = re.compile(r"^(\s+)\.\. (?:method|attribute):: (\w+)")
_MEMBERS = re.compile(r"^\s+:members:(.*)$")
_WORD = re.compile(r"\w+")


def documented_names(text: str) -> dict[str, list[str]]:
    """For each ``.. autoclass:: hyper.X`` of ``text``, the member names it documents, in order."""
    classes: dict[str, list[str]] = {}
    current: list[str] | None = None
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line and not line[0].isspace():
            match = _CLASS.match(line)
            current = classes.setdefault(match[1], []) if match else None
            continue
        if current is None:
            continue
        if (auto := _AUTO.match(line)) is not None:
            current.append(auto[1])
        elif (members := _MEMBERS.match(line)) is not None:
            current.extend(_WORD.findall(members[1]))
            while index < len(lines) and lines[index].startswith(" " * 13) and lines[index].strip():
                current.extend(_WORD.findall(lines[index]))  # the list goes on
                index += 1
        elif (handwritten := _HANDWRITTEN.match(line)) is not None:
            current.append(handwritten[2])
            # Further names of one directive stand aligned under the first.
            column = line.index(handwritten[2])
            while index < len(lines) and re.match(rf"^ {{{column}}}\w", lines[index]):
                current.append(_WORD.findall(lines[index])[0])
                index += 1
    return classes


def test_the_parser_reads_each_form_of_member_listing() -> None:
    text = """\
.. autoclass:: hyper.A
   :members: one, two,
             three

   .. automethod:: four
   .. attribute:: five
                  six

      Prose that mentions seven.

   .. method:: eight(x)
               nine(y)
      :no-index:

.. autoclass:: hyper.B()

Heading
-------
   .. automethod:: not_in_a_class
"""
    assert documented_names(text) == {
        "A": ["one", "two", "three", "four", "five", "six", "eight", "nine"],
        "B": [],
    }


@pytest.mark.parametrize("name", CLASSES)
def test_every_public_name_is_documented_once(name: str) -> None:
    documented = documented_names(API.read_text(encoding="utf-8"))[name]
    public = {member for member in dir(getattr(hyper, name)) if not member.startswith("_")}
    internal = INTERNAL.get(name, set())
    assert internal <= public, "an INTERNAL entry names a method that no longer exists"
    assert sorted(public - internal - set(documented)) == []
    assert sorted(member for member in set(documented) if documented.count(member) > 1) == []
    assert not internal & set(documented)


def test_members_render_as_listed_and_connections_share_one_order() -> None:
    text = API.read_text(encoding="utf-8")
    classes = documented_names(text)
    for name in CLASSES:
        # autodoc puts :members: coming from a mixin after the class's own,
        # whatever the listed order: each member gets its own directive.
        block = re.search(rf"^\.\. autoclass:: hyper\.{name}\b.*?(?=^\S)", text, re.S | re.M)
        assert block is not None and ":members:" not in block[0], name
    order = ["connect", "request", "getresponse", "get_response", "putrequest", "putheader"]
    order += ["endheaders", "send", "close"]
    for name in ("HTTPConnection", "HTTP20Connection", "HTTP11Connection"):
        assert [member for member in classes[name] if member in order] == order, name
