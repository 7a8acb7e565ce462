"""JSON request bodies, read strictly: what Python's ``json`` lets through that no JSON document may hold.

Python's parser accepts ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON, RFC
8259 §6), turns ``1e999`` into infinity, parses integers of any length (slowly,
then refuses past 4,300 digits with an error of its own) and decodes ``"\\ud800"``
into an unpaired surrogate that cannot be encoded again. Each of these reached
code that expected finite numbers and encodable text, and answered 500.
:class:`StrictJsonMiddleware` parses every JSON request body strictly first and
answers 422 with the reason; the application then parses a body known to be clean.

Examples:
    >>> strict_problem(b'{"buffer_m": NaN}')
    'NaN is not a JSON number'
    >>> strict_problem(b'[1e999]')
    "number '1e999' is too large for a 64-bit float"
    >>> strict_problem(b'{"name": "\\\\ud800"}')
    'text holds an unpaired surrogate (U+D800)'
    >>> strict_problem(b'{"route": [[139.6, 35.7]]}') is None
    True
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from alert_api.limits import App, Message, Receive, Scope, Send

#: Longest integer literal accepted (a 64-bit integer has 20 digits).
MAX_INT_DIGITS = 40
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:40]!r} is too large for a 64-bit float")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"integer of {len(text)} digits is too long")
    return int(text)


def _surrogates(value: Any) -> str | None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found = _SURROGATE.search(item)
            if found:
                return f"text holds an unpaired surrogate (U+{ord(found.group()):04X})"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def strict_loads(data: bytes | str) -> Any:
    """``json.loads`` that refuses NaN and infinities, overflowing numbers, very long integers and
    unpaired surrogates.

    Raises:
        ValueError: Not JSON, or one of those (the message says which).
    """
    try:
        value = json.loads(data, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except _Refused:
        raise
    except RecursionError:
        raise _Refused("the document is nested too deeply") from None
    problem = _surrogates(value)
    if problem is not None:
        raise _Refused(problem)
    return value


def strict_problem(data: bytes | str) -> str | None:
    """Why ``data`` is refused by :func:`strict_loads`, or ``None`` (plain syntax errors are left to FastAPI,
    which reports their position)."""
    try:
        strict_loads(data)
    except _Refused as error:
        return str(error)
    except ValueError:
        return None
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))
    return False


class StrictJsonMiddleware:
    """Answers 422 to a JSON request body that :func:`strict_loads` refuses, before the application sees it.

    Put it inside :class:`~alert_api.limits.BodyLimitMiddleware`, which bounds the body it reads.
    """

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = strict_problem(body) if body else None
        if problem is not None:
            payload = json.dumps({"detail": [{"type": "json_invalid", "loc": ["body"],
                                              "msg": f"JSON decode error: {problem}"}]}).encode()
            await send({"type": "http.response.start", "status": 422, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


__all__ = ["MAX_INT_DIGITS", "StrictJsonMiddleware", "strict_loads", "strict_problem"]
