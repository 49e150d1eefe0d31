"""HTTP access to a latentcast server: video URLs, the decoder bundle and the code stream.

Routes, relative to the server's base URL::

    GET /v1/decoder               the default bundle's manifest.json bytes; header X-Bundle-Sha256 is their sha256
    GET /v1/decoder/{name}        one file of that bundle: decoder.onnx or entropy.json
    GET /v1/bundles/{sha256}      the manifest.json whose sha256 is {sha256}; 404 if the server has no such bundle
    GET /v1/bundles/{sha256}/{name}  one file of that bundle
    GET /v1/videos/{id}           the video's status as JSON
    GET /v1/videos/{id}/stream    the .lcs code stream; 409 while not encoded yet, 404 if unknown.
                                  A Range header ``bytes=START-END`` or ``bytes=START-`` gets a 206 response
    GET /v1/videos/{id}/index     JSON: header_bytes, frame_count, fps_num, fps_den and keyframes,
                                  each {"frame": i, "offset": byte offset of packet i}; 409 and 404 as above

The video routes need the owner's API key (``ApiKeyAuth``) or a signed link: a video URL
with ``expires`` and ``signature`` query parameters, which ``parse_video_url`` keeps on the
stream and index URLs it derives. The bundle routes are public.

Error responses carry a JSON body ``{"detail": "..."}``. Failed requests raise ServerError,
downloaded bundle files whose sha256 differs from the manifest raise BundleError, and a
stream whose connection breaks raises StreamError.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from latentcast_client.bundle import MANIFEST, Bundle, Manifest, sha256_hex
from latentcast_client.cache import BundleCache
from latentcast_client.errors import BundleError, ServerError, StreamError

logger = logging.getLogger(__name__)

# 10 s to connect. Once connected, waiting 60 s for the next bytes of a response is an error.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
SHA256_HEADER = "X-Bundle-Sha256"
API_KEY_ENV = "LATENTCAST_API_KEY"
_VIDEO_PATH = re.compile(r"(?P<prefix>.*?)/v1/videos/(?P<id>[^/]+)(?P<stream>/stream)?/?")
_DOWNLOAD_CHUNK = 1 << 16


@dataclass(frozen=True)
class VideoLocation:
    """Addresses of one video: its status, its stream, and the server that serves its bundle."""

    video_id: str
    video_url: str
    stream_url: str
    server: str
    index_url: str


class ApiKeyAuth(httpx.Auth):
    """Sends an API key as ``Authorization: Bearer KEY`` to one origin (scheme, host and port) only.

    A bundle server named with ``--server`` may belong to someone else, so requests to any
    other origin go without the key.
    """

    def __init__(self, api_key: str, url: str):
        self._authorization = f"Bearer {api_key}"
        self._origin = _origin(url)

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if _origin(request.url) == self._origin:
            request.headers["Authorization"] = self._authorization
        yield request


def _origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def open_client(api_key: str | None = None, url: str | None = None,
                timeout: httpx.Timeout | float = DEFAULT_TIMEOUT) -> httpx.Client:
    """Return an httpx.Client that sends ``api_key`` to the origin of ``url``, or no key when ``api_key`` is None."""
    if api_key is None:
        return httpx.Client(timeout=timeout)
    if url is None:
        raise ValueError("an API key needs the URL of the server it belongs to")
    return httpx.Client(timeout=timeout, auth=ApiKeyAuth(api_key, url))


def _check_http_url(url: str, description: str, example: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid {description} {url!r}: expected an http or https URL such as {example}")


def parse_video_url(url: str, server: str | None = None) -> VideoLocation:
    """Split a video or stream URL into its addresses.

    ``url`` is ``http(s)://HOST[:PORT][/PREFIX]/v1/videos/<id>`` with or without a trailing
    ``/stream``. The bundle is fetched from ``server`` if given, else from the URL's origin and
    path prefix. Raises ValueError for any other URL.
    """
    parts = urlsplit(url)
    _check_http_url(url, "video URL", "http://127.0.0.1:8000/v1/videos/<id>/stream")
    if server is not None:
        _check_http_url(server, "server URL", "http://127.0.0.1:8000")
    match = _VIDEO_PATH.fullmatch(parts.path)
    if match is None:
        raise ValueError(f"invalid video URL {url!r}: its path is not /v1/videos/<id> or /v1/videos/<id>/stream")
    own_base = f"{parts.scheme}://{parts.netloc}{match['prefix']}"
    video_url = f"{own_base}/v1/videos/{match['id']}"
    query = f"?{parts.query}" if parts.query else ""
    return VideoLocation(
        video_id=match["id"],
        video_url=video_url + query,
        stream_url=f"{video_url}/stream{query}",
        server=(server or own_base).rstrip("/"),
        index_url=f"{video_url}/index{query}",
    )


def _detail(response: httpx.Response) -> str:
    """Return the error detail of a response: FastAPI's ``detail`` field, else the start of the body."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text[:300].strip() or "(empty body)"
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail)[:300]
    return json.dumps(body)[:300]


def raise_for_status(response: httpx.Response, action: str) -> None:
    """Raise ServerError naming ``action``, the URL, the status and the server's detail if the request failed."""
    if response.is_success:
        return
    try:
        response.read()
        detail = _detail(response)
    except httpx.HTTPError as exc:
        detail = f"(error body not readable: {exc})"
    url = str(response.request.url)
    raise ServerError(
        f"{action} failed: {url} returned HTTP {response.status_code} {response.reason_phrase}: {detail}",
        status_code=response.status_code, detail=detail, url=url,
    )


def _unreachable(url: str, exc: httpx.HTTPError) -> ServerError:
    return ServerError(
        f"cannot reach {url}: {type(exc).__name__}: {exc}; check the address and that the server is running",
        url=url,
    )


def fetch_manifest(client: httpx.Client, server: str) -> tuple[bytes, str]:
    """Download the server's bundle manifest; return its bytes and their sha256 (the bundle id)."""
    url = f"{server}/v1/decoder"
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise _unreachable(url, exc) from exc
    raise_for_status(response, "downloading the decoder bundle manifest")
    data = response.content
    digest = sha256_hex(data)
    announced = response.headers.get(SHA256_HEADER)
    if announced is not None and announced.lower() != digest:
        raise BundleError(
            f"the manifest from {url} has sha256 {digest}, but its {SHA256_HEADER} header is {announced}; "
            "the server may have replaced its bundle during the request, so retry"
        )
    return data, digest


def _download_file(client: httpx.Client, url: str, path: Path, expected_sha256: str) -> None:
    """Stream ``url`` into ``path``, raising BundleError if its sha256 is not ``expected_sha256``."""
    digest = hashlib.sha256()
    try:
        with client.stream("GET", url) as response, path.open("wb") as file:
            raise_for_status(response, f"downloading bundle file {path.name}")
            for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
                digest.update(chunk)
                file.write(chunk)
    except httpx.HTTPError as exc:
        raise _unreachable(url, exc) from exc
    actual = digest.hexdigest()
    if actual != expected_sha256:
        raise BundleError(
            f"bundle file {path.name} downloaded from {url} has sha256 {actual}, but the manifest lists "
            f"{expected_sha256}; the server's bundle is altered or was replaced during the download"
        )


def download_bundle(client: httpx.Client, server: str, cache: BundleCache) -> Bundle:
    """Return the server's current bundle, from the cache if it is there, else downloaded into it."""
    manifest_bytes, sha256 = fetch_manifest(client, server)
    cached = cache.load(sha256)
    if cached is not None:
        logger.debug("decoder bundle %s found in %s", sha256[:16], cached.path)
        return cached
    return _install(client, f"{server}/v1/decoder", manifest_bytes, sha256, cache)


def download_bundle_by_sha256(client: httpx.Client, server: str, cache: BundleCache, sha256: str) -> Bundle:
    """Return the bundle whose manifest has sha256 ``sha256``, from the cache or from ``server``'s /v1/bundles.

    Raises BundleError when the server has no such bundle (HTTP 404) or sends a manifest
    with another sha256, and ServerError for other failed requests.
    """
    cache.path(sha256)  # rejects a malformed sha256 before it becomes part of a URL
    cached = cache.load(sha256)
    if cached is not None:
        logger.debug("decoder bundle %s found in %s", sha256[:16], cached.path)
        return cached
    base = f"{server}/v1/bundles/{sha256}"
    try:
        response = client.get(base)
    except httpx.HTTPError as exc:
        raise _unreachable(base, exc) from exc
    if response.status_code == 404:
        raise BundleError(
            f"{server} has no decoder bundle {sha256[:16]} ({base} returned HTTP 404: {_detail(response)}); "
            "the video was encoded with a model this server no longer has, so re-encode it"
        )
    raise_for_status(response, "downloading the decoder bundle manifest")
    digest = sha256_hex(response.content)
    if digest != sha256:
        raise BundleError(f"the manifest from {base} has sha256 {digest}, not the {sha256} it was requested by")
    return _install(client, base, response.content, sha256, cache)


def _install(client: httpx.Client, base: str, manifest_bytes: bytes, sha256: str, cache: BundleCache) -> Bundle:
    """Download the files listed in ``manifest_bytes`` from ``base``/{name} and install the bundle in the cache."""
    manifest = Manifest.from_bytes(manifest_bytes)
    logger.info("downloading decoder bundle %s (%s) from %s", sha256[:16], manifest.model_id, base)
    with cache.staging() as staging:
        (staging / MANIFEST).write_bytes(manifest_bytes)
        for name in manifest.listed_files():
            _download_file(client, f"{base}/{quote(name)}", staging / name, manifest.files[name])
        return cache.install(staging, sha256)


def fetch_bundle(
    server: str,
    cache_dir: Path | str | None = None,
    *,
    client: httpx.Client | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
) -> Bundle:
    """Return the verified decoder bundle that ``server`` serves now, downloading it only if it is not cached.

    ``server`` is the base URL, e.g. ``http://127.0.0.1:8000``. Bundles are kept in
    ``cache_dir`` (default: see ``cache.default_cache_dir``). Raises ValueError for a
    ``server`` that is not an http or https URL.
    """
    _check_http_url(server, "server URL", "http://127.0.0.1:8000")
    cache = BundleCache(cache_dir)
    if client is not None:
        return download_bundle(client, server.rstrip("/"), cache)
    with httpx.Client(timeout=timeout) as own_client:
        return download_bundle(own_client, server.rstrip("/"), cache)


def fetch_json(client: httpx.Client, url: str, action: str) -> object:
    """GET ``url`` and return its JSON body; raises ServerError naming ``action`` if the request fails."""
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise _unreachable(url, exc) from exc
    raise_for_status(response, action)
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServerError(f"{action} failed: {url} returned a body that is not JSON: {exc}", url=url) from exc


def _check_range_response(response: httpx.Response, url: str, start: int) -> None:
    """Raise ServerError unless ``response`` is a 206 whose Content-Range starts at byte ``start``."""
    content_range = response.headers.get("Content-Range", "")
    if response.status_code != 206 or not content_range.startswith(f"bytes {start}-"):
        raise ServerError(
            f"requesting bytes from {start} of {url} failed: the server returned HTTP {response.status_code} "
            f"with Content-Range {content_range!r}, not a 206 range from byte {start}; "
            "the server may not support Range requests, so play from the start",
            status_code=response.status_code, url=url,
        )


def iter_stream(
    client: httpx.Client, url: str, chunk_size: int | None = None, byte_range: tuple[int, int | None] | None = None
) -> Iterator[bytes]:
    """Yield the body of a stream URL in chunks as they arrive.

    ``byte_range`` (start, inclusive end or None for the rest) requests part of the stream
    with a Range header, and the response must be a 206 for exactly that start.
    Raises ServerError if the request fails or returns an error status, and StreamError
    if the connection breaks after the body has started.
    """
    received = 0
    headers = {}
    if byte_range is not None:
        start, end = byte_range
        headers["Range"] = f"bytes={start}-{'' if end is None else end}"
    try:
        with client.stream("GET", url, headers=headers) as response:
            raise_for_status(response, "opening the stream")
            if byte_range is not None:
                _check_range_response(response, url, byte_range[0])
            try:
                for chunk in response.iter_bytes(chunk_size):
                    received += len(chunk)
                    yield chunk
            except httpx.HTTPError as exc:
                raise StreamError(
                    f"stream truncated: the connection to {url} broke after {received} bytes "
                    f"({type(exc).__name__}: {exc})"
                ) from exc
    except httpx.HTTPError as exc:
        raise _unreachable(url, exc) from exc
