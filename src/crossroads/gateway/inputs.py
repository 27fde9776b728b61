"""What a client sends, checked before admission: the body's JSON within bounds, and the
strings that reach a metrics label, a log line, the ledger or the audit log.

Every check here is linear in the body and refuses with a 400 (413 for a body over a
size limit) that names the limit or the field, before any budget is reserved or any
upstream called:

* the body is strict UTF-8 JSON; a lone surrogate (the escape ``\\ud800``, which Python
  decodes but nothing downstream can encode) anywhere in it, keys included, is refused;
* JSON nesting is at most ``gateway.max_json_depth`` levels; no array holds more than
  ``gateway.max_messages`` items (the ``messages`` array first of all) and the body holds
  at most ``8 × gateway.max_messages`` objects and arrays in all;
* integers have at most 20 digits and numbers are finite (a 400-digit ``max_tokens``
  cannot overflow the cost arithmetic);
* names that become labels or ledger columns (``model``, ``user``; key names and model
  patterns of the admin API) are at most :data:`MAX_NAME_CHARS` characters of valid
  Unicode without control characters.

Cheap on the common path: the walk over the parsed body visits containers only, and
looks at strings only when the body holds a ``\\uD…`` escape.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from ..types import ChatRequest
from .errors import ProtocolError, format_path, load_json_object

__all__ = [
    "CONTAINERS_PER_MESSAGE",
    "MAX_NAME_CHARS",
    "check_chat_names",
    "check_name",
    "load_body",
    "name_problem",
]

#: The longest model name, ``user`` or key name accepted.
MAX_NAME_CHARS = 256
#: The body may hold this many JSON objects and arrays per ``gateway.max_messages``.
CONTAINERS_PER_MESSAGE = 8

_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Characters that end or rewrite a log line besides the C0/C1 controls.
_LINE_BREAKERS = frozenset("\u2028\u2029\u0085")


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def name_problem(value: str, max_chars: int = MAX_NAME_CHARS) -> str | None:
    """What is wrong with ``value`` as a name that becomes a label or a ledger column
    (``"is 300 characters long; …"``), or None when it is fine."""
    if len(value) > max_chars:
        return f"is {len(value):,} characters long; the limit is {max_chars}"
    if value.isascii():
        bad = _ASCII_CONTROL.search(value)
        return None if bad is None else f"contains the control character {_describe(bad[0])}"
    for char in value:
        if "\ud800" <= char <= "\udfff":
            return (
                f"is not valid Unicode: it holds a lone surrogate ({_describe(char)}), "
                "e.g. from an unpaired JSON escape such as \\ud800"
            )
        if char in _LINE_BREAKERS or unicodedata.category(char) == "Cc":
            return f"contains the control character {_describe(char)}"
    return None


def check_name(value: str, param: str, what: str) -> None:
    """A 400 naming ``param`` unless ``value`` is a valid name (see :func:`name_problem`)."""
    problem = name_problem(value)
    if problem is not None:
        raise ProtocolError(
            f"Invalid value for '{param}': {what} {problem}. Send printable text of at "
            f"most {MAX_NAME_CHARS} characters.",
            param=param,
            code="invalid_value",
        )


def check_chat_names(request: ChatRequest, protocol: Literal["openai", "anthropic"]) -> None:
    """The parsed request's ``model`` and ``user`` (Anthropic ``metadata.user_id``)."""
    check_name(request.model, "model", "the model name")
    if request.user is not None:
        param = "user" if protocol == "openai" else "metadata.user_id"
        check_name(request.user, param, "the user id")


# -- the body ---------------------------------------------------------------------------


Style = Literal["openai", "anthropic"]


def load_body(
    body: bytes, *, max_depth: int, max_items: int, style: Style = "openai"
) -> dict[str, Any]:
    """The body as a JSON object within the limits, or a :class:`ProtocolError` whose
    ``param`` is written in ``style`` (``messages[0]`` or ``messages.0``)."""
    try:
        text = body.decode("utf-8-sig")  # strict: encoded surrogates are refused too
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"The request body is not valid UTF-8 (byte {exc.start}); send JSON encoded "
            "as UTF-8.",
            code="invalid_encoding",
        ) from None
    data = load_json_object(text)
    strings = "\\ud" in text or "\\uD" in text
    if strings or text.count("{") + text.count("[") > max_depth:
        _Walk(max_depth, max_items, style, strings=strings).run(data)
    elif isinstance(data.get("messages"), list) and len(data["messages"]) > max_items:
        _too_many("messages", len(data["messages"]), max_items)
    return data


class _Walk:
    """Depth, array lengths and container count (and lone surrogates when ``strings``),
    iteratively: a body nested deeper than Python's stack is refused, not a crash."""

    def __init__(self, max_depth: int, max_items: int, style: Style, *, strings: bool) -> None:
        self.max_depth, self.max_items, self.style = max_depth, max_items, style
        self.strings = strings

    def where(self, path: tuple[int | str, ...]) -> str:
        return format_path(list(path), self.style) or "(body)"

    def run(self, data: dict[str, Any]) -> None:
        max_depth, max_items, strings = self.max_depth, self.max_items, self.strings
        budget = CONTAINERS_PER_MESSAGE * max_items
        stack: list[tuple[dict[str, Any] | list[Any], int, tuple[int | str, ...]]] = [
            (data, 1, ())
        ]
        while stack:
            node, depth, path = stack.pop()
            budget -= 1
            if budget < 0:
                raise ProtocolError(
                    f"The request body holds more than {CONTAINERS_PER_MESSAGE * max_items:,} "
                    f"JSON objects and arrays ({CONTAINERS_PER_MESSAGE} × "
                    "gateway.max_messages); send fewer messages or parts.",
                    code="request_too_complex",
                    status_code=413,
                )
            if depth > max_depth:
                where = self.where(path)
                raise ProtocolError(
                    f"The request body nests JSON more than {max_depth} levels deep (at "
                    f"'{where}'); the limit is gateway.max_json_depth.",
                    param=where,
                    code="request_too_deep",
                )
            if isinstance(node, dict):
                entries: Any = node.items()
            else:
                if len(node) > max_items:
                    _too_many(self.where(path), len(node), max_items)
                entries = enumerate(node)
            for name, value in entries:
                if strings and isinstance(name, str):
                    self.check_text(name, (*path, name), key=True)
                if isinstance(value, dict | list):
                    stack.append((value, depth + 1, (*path, name)))
                elif strings and isinstance(value, str):
                    self.check_text(value, (*path, name), key=False)

    def check_text(self, value: str, path: tuple[int | str, ...], *, key: bool) -> None:
        if value.isascii():
            return
        for char in value:
            if "\ud800" <= char <= "\udfff":
                where = self.where(path)
                what = "a key" if key else "the string"
                raise ProtocolError(
                    f"Invalid value for '{where}': {what} is not valid Unicode: it holds a "
                    f"lone surrogate ({_describe(char)}), e.g. from an unpaired JSON escape "
                    "such as \\ud800. Send UTF-8 text (a character outside the BMP as a "
                    "surrogate pair).",
                    param=where,
                    code="invalid_unicode",
                )


def _too_many(where: str, count: int, limit: int) -> None:
    if where == "messages":
        message = (
            f"The request has {count:,} messages; the limit is {limit:,} "
            "(gateway.max_messages). Send fewer messages."
        )
    else:
        message = (
            f"'{where}' has {count:,} items; no array in a request may hold more than "
            f"{limit:,} (gateway.max_messages)."
        )
    raise ProtocolError(message, param=where, code="too_many_items", status_code=413)
