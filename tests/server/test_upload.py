from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx

from .conftest import MAX_UPLOAD_BYTES, upload

BOUNDARY = "latentcast-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
TOO_LARGE = (
    f"the upload is larger than the limit of {MAX_UPLOAD_BYTES} bytes; send a smaller or shorter video"
)


def _part_header(name: str, filename: str) -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def _partial_files(server) -> list[str]:
    return [path.name for path in (server.data_dir / "uploads").glob("*.part")]


def test_upload_over_limit_rejected(client: httpx.Client, server, shared_data: Path) -> None:
    # foreman.264 is 3.3 MB; the declared Content-Length is refused before the body is read.
    response = upload(client, shared_data / "foreman.264")
    assert response.status_code == 413
    assert response.json()["detail"] == TOO_LARGE
    assert _partial_files(server) == []


def test_chunked_upload_over_limit_rejected(client: httpx.Client, server) -> None:
    # Without a Content-Length the limit is enforced while the body streams in.
    def body() -> Iterator[bytes]:
        yield _part_header("file", "endless.mp4")
        chunk = b"\x00\x00\x00\x18ftypisom" + bytes(64 * 1024 - 12)
        for _ in range(MAX_UPLOAD_BYTES // len(chunk) + 4):
            yield chunk
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    response = client.post("/v1/videos", content=body(), headers={"content-type": MULTIPART})
    assert response.status_code == 413
    assert response.json()["detail"] == TOO_LARGE
    assert _partial_files(server) == []


def test_upload_not_multipart_rejected(client: httpx.Client, shared_data: Path) -> None:
    response = client.post("/v1/videos", content=(shared_data / "carphone.mp4").read_bytes(),
                           headers={"content-type": "video/mp4"})
    assert response.status_code == 415
    assert response.json()["detail"] == (
        "the request body must be multipart/form-data with the video in a field named 'file'"
    )


def test_upload_without_file_field_rejected(client: httpx.Client) -> None:
    response = client.post("/v1/videos", files={"video": ("clip.mp4", b"\x00\x00\x00\x18ftypisom")})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "the request has no 'file' field; send the video as multipart/form-data field 'file'"
    )


def test_upload_incomplete_body_rejected(client: httpx.Client, server) -> None:
    body = _part_header("file", "clip.mp4") + b"\x00\x00\x00\x18ftypisom"  # no closing boundary
    response = client.post("/v1/videos", content=body, headers={"content-type": MULTIPART})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "the request body ended before the end of the 'file' field; the upload is incomplete"
    )
    assert _partial_files(server) == []


def test_upload_malformed_multipart_rejected(client: httpx.Client) -> None:
    response = client.post("/v1/videos", content=b"this is not multipart at all",
                           headers={"content-type": MULTIPART})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed multipart body: ")


def test_upload_empty_file_rejected(client: httpx.Client) -> None:
    response = client.post("/v1/videos", files={"file": ("empty.mp4", b"")})
    assert response.status_code == 422
    assert response.json()["detail"] == "the uploaded file 'empty.mp4' is empty"


def test_upload_extra_fields_ignored(client: httpx.Client, tmp_path: Path) -> None:
    # The extra field is dropped, and the file is judged on its own bytes.
    response = client.post("/v1/videos", data={"title": "holiday"}, files={"file": ("notes.txt", b"plain text")})
    assert response.status_code == 415


def _text_part(name: str, value: bytes) -> bytes:
    return f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode() + value + b"\r\n"


def test_quality_field_after_file_read(client: httpx.Client, short_clip: Path) -> None:
    body = (
        _part_header("file", "short.mp4") + short_clip.read_bytes() + b"\r\n"
        + _text_part("quality", b"2") + f"--{BOUNDARY}--\r\n".encode()
    )
    response = client.post("/v1/videos", content=body, headers={"content-type": MULTIPART})
    assert response.status_code == 202
    assert response.json()["quality"] == 2


def test_oversized_quality_field_rejected(client: httpx.Client, server, short_clip: Path) -> None:
    body = (
        _text_part("quality", b"2" * 100) + _part_header("file", "short.mp4") + short_clip.read_bytes() + b"\r\n"
        + f"--{BOUNDARY}--\r\n".encode()
    )
    response = client.post("/v1/videos", content=body, headers={"content-type": MULTIPART})
    assert response.status_code == 422
    assert response.json()["detail"] == "the 'quality' field is longer than 64 bytes"
    assert _partial_files(server) == []
