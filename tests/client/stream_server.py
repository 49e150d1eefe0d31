"""A small HTTP server for the client tests: serves bundles and streams from a folder with uvicorn.

Run as ``python stream_server.py ROOT PORT``. Each subfolder ROOT/<site> is one server,
reachable under the path prefix /<site>, with the routes of the latentcast server::

    /<site>/v1/decoder                <site>/bundle/manifest.json, header X-Bundle-Sha256
    /<site>/v1/decoder/{name}         <site>/bundle/{name}
    /<site>/v1/bundles/{sha256}       <site>/bundle/manifest.json if its sha256 is {sha256}, else 404
    /<site>/v1/bundles/{sha256}/{name}  <site>/bundle/{name} under the same condition
    /<site>/v1/videos/{id}/stream     <site>/videos/{id}.lcs, sent in chunks of CHUNK bytes; a Range header
                                      bytes=START-END or bytes=START- gets a 206 with that part
    /<site>/v1/videos/{id}/index      the keyframe index of <site>/videos/{id}.lcs, as the latentcast server sends it

Files are read on every request, so a test changes what is served by changing files.
``<site>/bundle/announced-sha256``, if present, replaces the X-Bundle-Sha256 header's value.
Files beside a stream change how it is served:

    {id}.status   its text becomes the video's status and the stream returns 409
    {id}.cut      send only that many bytes of the stream, then break the connection
    {id}.hold     send all but the last chunk, then wait (up to 20 s) until {id}.release exists

Every request is appended to <site>/requests.log as "METHOD PATH", with " RANGE" when it has a Range header.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from latentcast_client.stream import packet_offsets

CHUNK = 997  # an odd size, so chunk borders fall inside headers and packets
BUNDLE_FILES = ("decoder.onnx", "entropy.json", "inter.json")


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _site(request: Request) -> Path | None:
    root: Path = request.app.state.root
    folder = root / request.path_params["site"]
    if not folder.is_dir():
        return None
    with (folder / "requests.log").open("a") as log:
        byte_range = request.headers.get("range")
        suffix = f" {byte_range}" if byte_range else ""
        log.write(f"{request.method} {request.url.path}{suffix}\n")
    return folder


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def manifest(request: Request) -> Response:
    site = _site(request)
    path = site / "bundle" / "manifest.json" if site else None
    if path is None or not path.is_file():
        return _error(404, "no decoder bundle is published")
    data = path.read_bytes()
    announced = site / "bundle" / "announced-sha256"
    digest = announced.read_text().strip() if announced.is_file() else hashlib.sha256(data).hexdigest()
    return Response(data, media_type="application/json", headers={"X-Bundle-Sha256": digest})


async def bundle_file(request: Request) -> Response:
    site = _site(request)
    name = request.path_params["name"]
    if site is None or name not in BUNDLE_FILES or not (site / "bundle" / name).is_file():
        return _error(404, f"bundle file not found: {name}")
    return Response((site / "bundle" / name).read_bytes(), media_type="application/octet-stream")


def _bundle_by_sha256(request: Request) -> Path | None:
    """Return <site>/bundle when its manifest's sha256 is the one in the path, else None."""
    site = _site(request)
    manifest_path = site / "bundle" / "manifest.json" if site else None
    if manifest_path is None or not manifest_path.is_file():
        return None
    if hashlib.sha256(manifest_path.read_bytes()).hexdigest() != request.path_params["sha256"]:
        return None
    return manifest_path.parent


async def bundle_manifest_by_sha256(request: Request) -> Response:
    folder = _bundle_by_sha256(request)
    if folder is None:
        return _error(404, f"no decoder bundle with sha256 {request.path_params['sha256']}")
    return Response((folder / "manifest.json").read_bytes(), media_type="application/json")


async def bundle_file_by_sha256(request: Request) -> Response:
    folder = _bundle_by_sha256(request)
    name = request.path_params["name"]
    if folder is None or name not in BUNDLE_FILES or not (folder / name).is_file():
        return _error(404, f"bundle file not found: {name}")
    return Response((folder / name).read_bytes(), media_type="application/octet-stream")


async def _chunks(data: bytes, cut: int | None, hold: Path | None, release: Path):
    end = len(data) if cut is None else cut
    offsets = list(range(0, end, CHUNK))
    for number, start in enumerate(offsets):
        if hold is not None and number == len(offsets) - 1:
            for _ in range(200):
                if release.exists():
                    break
                await asyncio.sleep(0.1)
        yield data[start : min(start + CHUNK, end)]
        await asyncio.sleep(0)
    if cut is not None:
        # An exception inside the body makes uvicorn drop the connection before the last chunk.
        raise ConnectionAbortedError(f"test server cut the stream after {cut} bytes")


def _stream_file(request: Request) -> Path | JSONResponse:
    """Return the .lcs file of the request's video, or the 404 or 409 error response."""
    site = _site(request)
    video_id = request.path_params["video_id"]
    if site is None:
        return _error(404, f"video not found: {video_id}")
    videos = site / "videos"
    status = videos / f"{video_id}.status"
    if status.is_file():
        return _error(409, f"video {video_id} is not encoded yet (status: {status.read_text().strip()})")
    if not (videos / f"{video_id}.lcs").is_file():
        return _error(404, f"video not found: {video_id}")
    return videos / f"{video_id}.lcs"


async def stream(request: Request) -> Response:
    path = _stream_file(request)
    if isinstance(path, Response):
        return path
    video_id = request.path_params["video_id"]
    videos = path.parent
    data = path.read_bytes()
    status_code, headers = 200, {}
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("range", ""))
    if match is not None:
        start = int(match[1])
        end = min(int(match[2]), len(data) - 1) if match[2] else len(data) - 1
        if start >= len(data) or end < start:
            return _error(416, f"range {match[0]} selects no byte of {len(data)}")
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        data, status_code = data[start : end + 1], 206
    cut_file = videos / f"{video_id}.cut"
    cut = int(cut_file.read_text()) if cut_file.is_file() else None
    hold = videos / f"{video_id}.hold"
    body = _chunks(data, cut, hold if hold.is_file() else None, videos / f"{video_id}.release")
    return StreamingResponse(body, status_code=status_code, media_type="application/octet-stream", headers=headers)


async def index(request: Request) -> Response:
    path = _stream_file(request)
    if isinstance(path, Response):
        return path
    with path.open("rb") as file:
        packets = packet_offsets(file)
    return JSONResponse({
        "header_bytes": packets.header_size, "frame_count": packets.header.frame_count,
        "fps_num": packets.header.fps.numerator, "fps_den": packets.header.fps.denominator,
        "keyframes": [{"frame": frame, "offset": packets.offsets[frame]} for frame in packets.keyframes],
    })


def build_app(root: Path) -> Starlette:
    app = Starlette(
        routes=[
            Route("/healthz", health),
            Route("/{site}/v1/decoder", manifest),
            Route("/{site}/v1/decoder/{name}", bundle_file),
            Route("/{site}/v1/bundles/{sha256}", bundle_manifest_by_sha256),
            Route("/{site}/v1/bundles/{sha256}/{name}", bundle_file_by_sha256),
            Route("/{site}/v1/videos/{video_id}/stream", stream),
            Route("/{site}/v1/videos/{video_id}/index", index),
        ]
    )
    app.state.root = root
    return app


if __name__ == "__main__":
    uvicorn.run(build_app(Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
