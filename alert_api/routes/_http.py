"""HTTP helpers shared by the routes: ETags and conditional GETs."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response


def etag_response(request: Request, content: bytes, media_type: str) -> Response:
    """``content`` with a strong ETag; 304 Not Modified when ``If-None-Match`` already names it.

    The ETag is a hash of the bytes, so it changes exactly when the answer does.
    """
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    wanted = request.headers.get("if-none-match", "")
    candidates = {tag.strip().removeprefix("W/") for tag in wanted.split(",") if tag.strip()}
    if etag in candidates or "*" in candidates:
        return Response(status_code=304, headers=headers)
    return Response(content=content, media_type=media_type, headers=headers)
