"""Error replies that stay small, whatever the request held.

FastAPI's own reply to a request that fails validation lists every error with
the rejected ``input`` and the rule's ``ctx`` in full, so a 2.4 MB body could
earn a reply larger than itself. :func:`bounded_errors` keeps at most
``MAX_ERRORS`` errors and cuts any ``input``, ``ctx`` or ``msg`` whose JSON is
longer than ``MAX_ECHO_CHARS`` characters to that many, marked with ``…``; a
reply says how many errors it left out. A validation reply is therefore at most
a few tens of KiB.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

#: Longest ``input``, ``ctx`` or ``msg`` echoed in a validation error, in characters of JSON.
MAX_ECHO_CHARS = 200
#: Most validation errors in one reply.
MAX_ERRORS = 20


def _bounded(value: Any) -> Any:
    """``value`` itself when its JSON is short, else the start of its JSON text marked with ``…``."""
    encoded = jsonable_encoder(value, custom_encoder={BaseException: str})
    text = json.dumps(encoded, ensure_ascii=False, default=str)
    if len(text) <= MAX_ECHO_CHARS:
        return encoded
    return text[:MAX_ECHO_CHARS] + "…"


def bounded_errors(errors: Sequence[Any]) -> dict[str, Any]:
    """The body of a 422 for ``errors``: at most ``MAX_ERRORS``, each echo at most ``MAX_ECHO_CHARS``.

    Examples:
        >>> body = bounded_errors([{"type": "string_too_long", "loc": ["body", "url"], "msg": "too long",
        ...                         "input": "x" * 5000, "ctx": {"max_length": 2048}}] * 30)
        >>> len(body["detail"]), body["errors_omitted"], len(body["detail"][0]["input"]), body["detail"][0]["ctx"]
        (20, 10, 201, {'max_length': 2048})
    """
    detail = []
    for error in list(errors)[:MAX_ERRORS]:
        item = dict(error) if isinstance(error, dict) else {"msg": str(error)}
        item.pop("url", None)  # pydantic's link to its documentation
        for key in ("input", "ctx", "msg"):
            if key in item:
                item[key] = _bounded(item[key])
        if "loc" in item:
            item["loc"] = [_bounded(part) for part in list(item["loc"])[:16]]
        detail.append(item)
    body: dict[str, Any] = {"detail": detail}
    if len(errors) > MAX_ERRORS:
        body["errors_omitted"] = len(errors) - MAX_ERRORS
    return body


async def validation_error_reply(request: Request, error: Exception) -> JSONResponse:
    """422 for a request that failed validation, with the echoes bounded (:func:`bounded_errors`)."""
    errors = error.errors() if isinstance(error, RequestValidationError) else [{"msg": str(error)}]
    return JSONResponse(status_code=422, content=bounded_errors(errors))


__all__ = ["MAX_ECHO_CHARS", "MAX_ERRORS", "bounded_errors", "validation_error_reply"]
