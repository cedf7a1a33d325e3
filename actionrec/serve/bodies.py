"""An upload's body to a file as it arrives: the raw body (``RawBody``) or the field ``file`` of a
multipart form (``FormBody``, parsed by python-multipart), each counted against the server's
limit (413), and ``receive``, which cuts off a body that falls behind (408) or is cut short (400)."""

from __future__ import annotations

import asyncio
import time

from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from .admission import Shutdown
from .service import Limits

FORM_ALLOWANCE = 2**16  # bytes of a multipart form besides its file: boundaries, headers, fields
# bytes past the limit read and dropped before the 413: a client still sending reads the answer
# (a socket closed on unread data resets the connection, and the answer with it)
DRAIN_BYTES = 8 * 2**20


def too_big(limits: Limits, *, close: bool = True) -> HTTPException:
    return HTTPException(413, f"upload over the server's {limits.max_upload_mb:g} MiB "
                              f"(--max-upload-mb)", headers={"Connection": "close"} if close else None)


class RawBody:
    """The request body is the file: written as it comes, 413 past the limit."""

    allowance = 0

    def __init__(self, f, limits: Limits):
        self.f, self.limits, self.size = f, limits, 0
        self.max_bytes = int(limits.max_upload_mb * 2**20)

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise too_big(self.limits)
        self.f.write(chunk)

    def finish(self) -> None:
        if self.size == 0:
            raise HTTPException(400, "empty upload: the request body must be a video file")


class FormBody:
    """A multipart/form-data body: its field ``file`` written as it comes (413 past the limit),
    its other parts dropped; 400 for a form that is not valid, has no ``file`` or two."""

    allowance = FORM_ALLOWANCE

    def __init__(self, content_type: str, f, limits: Limits):
        boundary = parse_options_header(content_type)[1].get(b"boundary")
        if not boundary:
            raise HTTPException(400, "a multipart form without a boundary in its Content-Type")
        self.file = RawBody(f, limits)
        self.files, self.in_file, self.field, self.value = 0, False, b"", b""
        self.disposition = b""
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._add("field", data[start:end]),
            "on_header_value": lambda data, start, end: self._add("value", data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data})

    def _part_begin(self) -> None:
        self.in_file, self.disposition = False, b""

    def _add(self, attribute: str, data: bytes) -> None:
        setattr(self, attribute, getattr(self, attribute) + data)

    def _header_end(self) -> None:
        if self.field.lower() == b"content-disposition":
            self.disposition = self.value
        self.field = self.value = b""

    def _headers_finished(self) -> None:
        name = parse_options_header(self.disposition)[1].get(b"name")
        self.in_file = name == b"file"
        if self.in_file:
            self.files += 1
            if self.files > 1:
                raise HTTPException(400, "a multipart form with two fields named 'file'; send "
                                         "one video")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.file.write(data[start:end])

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except FormParserError as e:
            raise HTTPException(400, f"not a valid multipart form: {e}") from None

    def finish(self) -> None:
        if self.parser.state != MultipartState.END:
            raise HTTPException(400, "a multipart form cut short: its closing boundary is "
                                     "missing")
        if not self.files:
            raise HTTPException(400, "a multipart form without a field named 'file' holding "
                                     "the video")
        self.file.finish()


async def receive(request: Request, sink: RawBody | FormBody, limits: Limits,
                  shutdown: Shutdown) -> None:
    """The request body into ``sink``: 413 past the limit (declared or counted; up to
    ``DRAIN_BYTES`` more are read and dropped first, unless the client waits for ``100
    Continue``), 400 when cut short, 408 when it falls behind (after ``upload_timeout_s`` s it
    must have come at ``upload_min_kib_s`` KiB/s on average), 503 once ``shutdown`` is over."""
    max_body = int(limits.max_upload_mb * 2**20) + sink.allowance
    declared = request.headers.get("content-length", "")
    over = declared.isdigit() and int(declared) > max_body
    waits = request.headers.get("expect", "").lower() == "100-continue"
    if over and (waits or int(declared) > max_body + DRAIN_BYTES):
        raise too_big(limits)
    rate, start, size = limits.upload_min_kib_s * 1024, time.monotonic(), 0
    while True:
        left = start + limits.upload_timeout_s + size / rate - time.monotonic()
        arrived = asyncio.ensure_future(request.receive())
        if await shutdown.first(arrived, max(left, 0)):
            arrived.cancel()
            raise shutdown.refusal()
        if not arrived.done():
            arrived.cancel()
            raise HTTPException(
                408, f"upload too slow: {size} bytes in {time.monotonic() - start:.0f} s; this "
                     f"server waits {limits.upload_timeout_s:g} s, then wants "
                     f"{limits.upload_min_kib_s:g} KiB/s on average (--upload-timeout, "
                     f"--upload-min-rate)", headers={"Connection": "close"})
        message = arrived.result()
        if message["type"] == "http.disconnect":
            raise HTTPException(400, "upload cut short: the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body + DRAIN_BYTES:
            raise too_big(limits)
        over = over or size > max_body
        if not over:
            try:
                sink.write(chunk)
            except HTTPException as e:  # a form's file past the limit: drained as the rest
                if e.status_code != 413:
                    raise
                over = True
        if not message.get("more_body", False):
            break
    if over:
        raise too_big(limits, close=False)
    sink.finish()
