"""Receive a multipart upload straight to disk, chunk by chunk, under a size limit.

FastAPI's ``UploadFile`` parses the whole body into a temporary file before the
route runs, so a size limit could only be checked afterwards. Here the body goes
to python-multipart's streaming parser as it arrives. The bytes of the ``file``
field are written to the destination file, and the upload stops as soon as the
limit is passed. The small text fields named in ``TEXT_FIELDS`` are kept in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException, Request, status
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

FILE_FIELD = "file"
QUALITY_FIELD = "quality"
# Text fields read beside the file; every other field is read and dropped.
TEXT_FIELDS = (QUALITY_FIELD,)
MAX_TEXT_FIELD_BYTES = 64
# Room for the multipart boundaries, part headers and small extra fields beside the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class ReceivedFile:
    filename: str | None
    size: int
    fields: dict[str, str] = field(default_factory=dict)  # the TEXT_FIELDS the request sent


@dataclass
class _PartState:
    """Parser callbacks for one request: headers of the current part and the file bytes to write."""

    header_name: bytes = b""
    header_value: bytes = b""
    disposition: bytes = b""
    in_file_part: bool = False
    seen_file: bool = False
    file_complete: bool = False
    filename: str | None = None
    pending: list[bytes] = field(default_factory=list)
    text_field: str | None = None
    text_values: dict[str, bytearray] = field(default_factory=dict)
    oversized_field: str | None = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.disposition = b""
        self.in_file_part = False
        self.text_field = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        name = options.get(b"name", b"").decode("utf-8", errors="replace")
        # Only the first "file" field and the first of each text field count; other fields are read and dropped.
        if name == FILE_FIELD and not self.seen_file:
            self.in_file_part = True
            self.seen_file = True
            raw_filename = options.get(b"filename")
            self.filename = raw_filename.decode("utf-8", errors="replace") if raw_filename is not None else None
        elif name in TEXT_FIELDS and name not in self.text_values:
            self.text_field = name
            self.text_values[name] = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file_part:
            self.pending.append(bytes(data[start:end]))
        elif self.text_field is not None:
            value = self.text_values[self.text_field]
            value += data[start:end]
            if len(value) > MAX_TEXT_FIELD_BYTES:
                self.oversized_field = self.text_field
                del value[MAX_TEXT_FIELD_BYTES:]

    def on_part_end(self) -> None:
        if self.in_file_part:
            self.file_complete = True
        self.in_file_part = False
        self.text_field = None

    def text_fields(self) -> dict[str, str]:
        return {name: bytes(value).decode("utf-8", errors="replace") for name, value in self.text_values.items()}


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"the request body must be multipart/form-data with the video in a field named '{FILE_FIELD}'",
        )
    return boundary


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=f"the upload is larger than the limit of {max_bytes} bytes; send a smaller or shorter video",
    )


def _write_all(out: BinaryIO, pieces: list[bytes]) -> None:
    for piece in pieces:
        out.write(piece)


async def receive_upload(request: Request, destination: Path, max_bytes: int) -> ReceivedFile:
    """Write the request's ``file`` field to ``destination`` without holding it in memory.

    Raises HTTPException: 415 for a body that is not multipart/form-data, 413 past
    ``max_bytes`` of file data, 400 for a malformed body or one that ends inside
    the ``file`` field, 422 without a ``file`` field. A text field over
    MAX_TEXT_FIELD_BYTES also gets 422. The caller removes ``destination`` when this raises.
    """
    boundary = _boundary(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD_BYTES:
        raise _too_large(max_bytes)

    state = _PartState()
    parser = MultipartParser(boundary, state.callbacks())
    body_bytes = 0
    file_bytes = 0
    out = await run_in_threadpool(open, destination, "wb")
    try:
        async for chunk in request.stream():
            body_bytes += len(chunk)
            if body_bytes > max_bytes + MULTIPART_OVERHEAD_BYTES:
                raise _too_large(max_bytes)
            try:
                parser.write(chunk)
            except FormParserError as exc:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"malformed multipart body: {exc}") from exc
            pieces, state.pending = state.pending, []
            file_bytes += sum(len(piece) for piece in pieces)
            if file_bytes > max_bytes:
                raise _too_large(max_bytes)
            if pieces:
                await run_in_threadpool(_write_all, out, pieces)
        try:
            parser.finalize()
        except FormParserError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"malformed multipart body: {exc}") from exc
    finally:
        await run_in_threadpool(out.close)

    if not state.seen_file:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"the request has no '{FILE_FIELD}' field; send the video as multipart/form-data field '{FILE_FIELD}'",
        )
    if not state.file_complete:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail="the request body ended before the end of the 'file' field; the upload is incomplete",
        )
    if state.oversized_field is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"the '{state.oversized_field}' field is longer than {MAX_TEXT_FIELD_BYTES} bytes",
        )
    return ReceivedFile(filename=state.filename, size=file_bytes, fields=state.text_fields())
