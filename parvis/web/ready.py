"""Pages kept as ready bytes: compressed once, then served with gzip and ETag/304.

A cached page is stored gzip-compressed (most clients accept it, and it is about ten times smaller);
a client that does not accept gzip gets it decompressed.  The ETag is weak (``W/``): the gzip and the
plain bodies are the same page, so either validates a copy of the other.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import Response

from parvis.web.headers import weighted_items

GZIP_LEVEL = 6


@dataclass(frozen=True)
class ReadyPage:
    gzipped: bytes
    etag: str
    status_code: int = 200

    @classmethod
    def of(cls, html: str, status_code: int = 200) -> ReadyPage:
        body = html.encode()
        # mtime=0: the same page always compresses to the same bytes.
        gzipped = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        return cls(gzipped, 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"', status_code)

    def response(self, request_headers: Headers, cache_control: str) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
        if self.status_code == 200 and etag_matches(request_headers.get("if-none-match"), self.etag):
            return Response(status_code=304, headers=headers)
        if accepts_gzip(request_headers.get("accept-encoding")):
            headers["Content-Encoding"] = "gzip"
            body = self.gzipped
        else:
            body = gzip.decompress(self.gzipped)
        return Response(body, status_code=self.status_code, media_type="text/html; charset=utf-8", headers=headers)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip`` or ``*`` with a quality above 0)."""
    qualities = {name.lower(): quality for name, quality in weighted_items(accept_encoding)}
    if "gzip" in qualities:
        return qualities["gzip"] > 0
    return qualities.get("*", 0.0) > 0


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison of an If-None-Match header with ``etag`` (RFC 9110, 13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == wanted for candidate in if_none_match.split(","))
