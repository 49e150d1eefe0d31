"""HTTP access against a real uvicorn server on 127.0.0.1: URLs, bundle download and cache, streams."""

from __future__ import annotations

import socket

import httpx
import pytest

from latentcast_client.bundle import DECODER_FILE, TABLES_FILE
from latentcast_client.cache import BundleCache
from latentcast_client.errors import BundleError, ServerError, StreamError
from latentcast_client.remote import (
    ApiKeyAuth, download_bundle_by_sha256, fetch_bundle, iter_stream, open_client, parse_video_url,
)


def downloads(site, name: str) -> int:
    return site.requests().count(f"GET /{site.path.name}/v1/decoder/{name}")


@pytest.fixture()
def client():
    with httpx.Client(timeout=10.0) as http:
        yield http


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1/videos/abc/stream",
        "http://127.0.0.1:8000/v1/videos/abc",
        "http://127.0.0.1:8000/v1/videos/abc/",
        "http://127.0.0.1:8000/v1/videos/abc/stream/",
    ],
)
def test_parse_video_url_forms(url):
    location = parse_video_url(url)
    assert location.video_id == "abc"
    assert location.stream_url == "http://127.0.0.1:8000/v1/videos/abc/stream"
    assert location.video_url == "http://127.0.0.1:8000/v1/videos/abc"
    assert location.server == "http://127.0.0.1:8000"


def test_parse_video_url_keeps_path_prefix():
    location = parse_video_url("https://example.test/api/v1/videos/x1/stream")
    assert location.server == "https://example.test/api"


def test_parse_video_url_keeps_query():
    location = parse_video_url("http://127.0.0.1:8000/v1/videos/x1?token=t")
    assert location.stream_url == "http://127.0.0.1:8000/v1/videos/x1/stream?token=t"


def test_parse_video_url_server_override():
    location = parse_video_url("http://127.0.0.1:8000/v1/videos/x1", server="http://127.0.0.1:9000/")
    assert location.server == "http://127.0.0.1:9000"
    assert location.stream_url == "http://127.0.0.1:8000/v1/videos/x1/stream"


@pytest.mark.parametrize(
    "url,message",
    [
        ("ftp://127.0.0.1/v1/videos/a/stream", "expected an http or https URL"),
        ("127.0.0.1:8000/v1/videos/a", "expected an http or https URL"),
        ("http://127.0.0.1:8000/v1/videos/", "is not /v1/videos/<id>"),
        ("http://127.0.0.1:8000/v1/videos/a/frames", "is not /v1/videos/<id>"),
        ("http://127.0.0.1:8000/", "is not /v1/videos/<id>"),
    ],
)
def test_parse_video_url_rejects(url, message):
    with pytest.raises(ValueError, match=message):
        parse_video_url(url)


def test_parse_video_url_rejects_bad_server():
    with pytest.raises(ValueError, match="invalid server URL"):
        parse_video_url("http://127.0.0.1:8000/v1/videos/a", server="localhost:8000")


def test_fetch_bundle_downloads_into_cache(site, tiny_bundle, tmp_path):
    bundle = fetch_bundle(site.url, tmp_path)
    assert bundle.sha256 == tiny_bundle.sha256
    assert bundle.path == BundleCache(tmp_path).path(tiny_bundle.sha256)
    assert bundle.tables() == tiny_bundle.tables()


def test_fetch_bundle_downloads_once(site, tmp_path):
    fetch_bundle(site.url, tmp_path)
    fetch_bundle(site.url + "/", tmp_path)
    assert downloads(site, DECODER_FILE) == 1
    assert downloads(site, TABLES_FILE) == 1


def test_fetch_bundle_uses_given_client(site, tmp_path, client):
    assert fetch_bundle(site.url, tmp_path, client=client).path.is_dir()


def test_fetch_bundle_default_cache(site, tiny_bundle, isolated_cache):
    bundle = fetch_bundle(site.url)
    assert bundle.path == isolated_cache / "bundles" / tiny_bundle.sha256


def test_altered_cached_bundle_downloaded_again(site, tmp_path):
    bundle = fetch_bundle(site.url, tmp_path)
    (bundle.path / DECODER_FILE).write_bytes(b"altered in the cache")
    again = fetch_bundle(site.url, tmp_path)
    assert downloads(site, DECODER_FILE) == 2
    assert (again.path / DECODER_FILE).read_bytes() != b"altered in the cache"


@pytest.mark.parametrize("name", [DECODER_FILE, TABLES_FILE])
def test_altered_served_file_rejected(site, tmp_path, name):
    with (site.path / "bundle" / name).open("ab") as file:
        file.write(b"\n")
    with pytest.raises(BundleError, match=f"bundle file {name} downloaded from .* has sha256"):
        fetch_bundle(site.url, tmp_path)
    assert list((tmp_path / "bundles").iterdir()) == []


def test_sha256_header_mismatch_rejected(site, tmp_path):
    (site.path / "bundle" / "announced-sha256").write_text("1" * 64)
    with pytest.raises(BundleError, match="X-Bundle-Sha256 header is 1111"):
        fetch_bundle(site.url, tmp_path)


def test_missing_bundle_is_server_error(site, tmp_path):
    (site.path / "bundle" / "manifest.json").unlink()
    with pytest.raises(ServerError, match="HTTP 404 Not Found: no decoder bundle is published") as caught:
        fetch_bundle(site.url, tmp_path)
    assert caught.value.status_code == 404
    assert caught.value.detail == "no decoder bundle is published"


def test_missing_bundle_file_is_server_error(site, tmp_path):
    (site.path / "bundle" / TABLES_FILE).unlink()
    with pytest.raises(ServerError, match="downloading bundle file entropy.json failed"):
        fetch_bundle(site.url, tmp_path)


def test_unreachable_server_is_server_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerError, match="cannot reach") as caught:
        fetch_bundle(f"http://127.0.0.1:{port}", tmp_path)
    assert caught.value.status_code is None


def test_fetch_bundle_rejects_bad_server_url(tmp_path):
    with pytest.raises(ValueError, match="invalid server URL"):
        fetch_bundle("127.0.0.1:8000", tmp_path)


def test_iter_stream_returns_all_bytes(site, encoded_clip, client):
    chunks = list(iter_stream(client, site.stream_url()))
    assert b"".join(chunks) == encoded_clip.data
    assert len(chunks) > 1


def test_iter_stream_unknown_video(site, client):
    with pytest.raises(ServerError, match="HTTP 404") as caught:
        list(iter_stream(client, site.stream_url("nope")))
    assert caught.value.detail == "video not found: nope"


def test_iter_stream_not_encoded_yet(site, client):
    (site.path / "videos" / "pending.status").write_text("encoding")
    with pytest.raises(ServerError, match="HTTP 409") as caught:
        list(iter_stream(client, site.stream_url("pending")))
    assert caught.value.status_code == 409
    assert caught.value.detail == "video pending is not encoded yet (status: encoding)"


def test_iter_stream_broken_connection(site, encoded_clip, client):
    site.add_video("cut", encoded_clip.data)
    (site.path / "videos" / "cut.cut").write_text("1500")
    received = []
    with pytest.raises(StreamError, match="stream truncated: the connection to .* broke after"):
        for chunk in iter_stream(client, site.stream_url("cut")):
            received.append(chunk)
    assert b"".join(received) == encoded_clip.data[: len(b"".join(received))]


def test_bundle_by_sha256_downloads_into_cache(site, tiny_bundle, tmp_path, client):
    bundle = download_bundle_by_sha256(client, site.url, BundleCache(tmp_path), tiny_bundle.sha256)
    assert bundle.sha256 == tiny_bundle.sha256
    assert bundle.path == BundleCache(tmp_path).path(tiny_bundle.sha256)
    assert site.requests().count(f"GET /{site.path.name}/v1/bundles/{tiny_bundle.sha256}/{DECODER_FILE}") == 1


def test_bundle_by_sha256_cached_needs_no_request(site, tiny_bundle, tmp_path, client):
    cache = BundleCache(tmp_path)
    download_bundle_by_sha256(client, site.url, cache, tiny_bundle.sha256)
    before = len(site.requests())
    download_bundle_by_sha256(client, site.url, cache, tiny_bundle.sha256)
    assert len(site.requests()) == before


def test_bundle_by_sha256_unknown_to_server(site, tmp_path, client):
    with pytest.raises(BundleError, match=f"{site.url} has no decoder bundle 3333333333333333 .* HTTP 404"):
        download_bundle_by_sha256(client, site.url, BundleCache(tmp_path), "3" * 64)


def test_bundle_by_sha256_rejects_malformed_sha(site, tmp_path, client):
    with pytest.raises(BundleError, match="is not a lowercase hex sha256"):
        download_bundle_by_sha256(client, site.url, BundleCache(tmp_path), "../" + "a" * 61)
    assert site.requests() == []


def test_bundle_by_sha256_unreachable_server(tmp_path, client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerError, match="cannot reach"):
        download_bundle_by_sha256(client, f"http://127.0.0.1:{port}", BundleCache(tmp_path), "4" * 64)


def _record_headers(seen: list[tuple[str, str | None]]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        return httpx.Response(200)

    return httpx.MockTransport(handle)


def test_api_key_auth_sends_key_to_its_origin():
    seen: list[tuple[str, str | None]] = []
    auth = ApiKeyAuth("lc_secret", "http://127.0.0.1:8000/v1/videos/a")
    with httpx.Client(auth=auth, transport=_record_headers(seen)) as http:
        http.get("http://127.0.0.1:8000/v1/videos/a/stream")
    assert seen == [("http://127.0.0.1:8000/v1/videos/a/stream", "Bearer lc_secret")]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9000/v1/bundles/abc",
    "https://127.0.0.1:8000/v1/bundles/abc",
    "http://localhost:8000/v1/bundles/abc",
])
def test_api_key_auth_withholds_key_from_other_origins(url):
    seen: list[tuple[str, str | None]] = []
    auth = ApiKeyAuth("lc_secret", "http://127.0.0.1:8000/v1/videos/a")
    with httpx.Client(auth=auth, transport=_record_headers(seen)) as http:
        http.get(url)
    assert seen == [(url, None)]


def test_open_client_with_key_uses_api_key_auth():
    with open_client("lc_secret", "http://127.0.0.1:8000/v1/videos/a") as http:
        assert isinstance(http.auth, ApiKeyAuth)


def test_open_client_key_needs_url():
    with pytest.raises(ValueError, match="needs the URL"):
        open_client("lc_secret")


def test_parse_video_url_keeps_signed_query():
    location = parse_video_url("http://127.0.0.1:8000/v1/videos/x1?expires=5&signature=ab")
    assert location.video_url == "http://127.0.0.1:8000/v1/videos/x1?expires=5&signature=ab"
    assert location.index_url == "http://127.0.0.1:8000/v1/videos/x1/index?expires=5&signature=ab"
