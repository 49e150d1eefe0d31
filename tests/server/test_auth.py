"""Access control against a real server process: API keys, ownership, signed links and rate limits."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from latentcast.server.keys import create_key_with_command, hash_key
from latentcast.server.process import ServerProcess
from latentcast.server.settings import DATABASE_NAME
from latentcast.server.signing import SECRET_FILE_NAME, sign_link
from latentcast_client.cli import main as client_main
from latentcast_client.player import PlaybackStats
from latentcast_client.playback import Player
from latentcast_client.remote import open_client
from latentcast_client.video import read_frames

from .conftest import key_headers, upload, wait_for_encode

UNKNOWN_ID = "0" * 32
# A secret of the minimum length, for the server that signs links with LATENTCAST_SIGNING_SECRET.
FIXED_SECRET = "s" * 32


def new_key(server: ServerProcess, name: str) -> str:
    return create_key_with_command(server.env, server.data_dir, name)


def key_id_of(server: ServerProcess, name: str) -> str:
    """Return the id of the key named ``name``, read from `latentcast keys list`."""
    listed = run_keys_command(server, "list").stdout.splitlines()
    return next(line.split()[0] for line in listed if line.endswith(f"  {name}"))


def run_keys_command(server: ServerProcess, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "latentcast.server.cli", "keys", *args, "--data-dir", str(server.data_dir)]
    return subprocess.run(command, env=server.env, capture_output=True, text=True, timeout=120, check=True)


def signed_link(client: httpx.Client, video_id: str, expires_in: int = 600) -> dict:
    response = client.post(f"/v1/videos/{video_id}/links", json={"expires_in": expires_in})
    assert response.status_code == 201, response.text
    return response.json()


def with_query(url: str, **params: str) -> str:
    """Return ``url`` with the given query parameters replaced."""
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    return parts._replace(query=urlencode({**query, **params})).geturl()


@pytest.fixture(scope="module")
def other_client(server: ServerProcess) -> Iterator[httpx.Client]:
    """A client with a second key, which owns none of the shared server's other videos."""
    with httpx.Client(base_url=server.base_url, timeout=60.0,
                      headers=key_headers(new_key(server, "other customer"))) as session:
        yield session


@pytest.fixture(scope="module")
def anonymous(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60.0) as session:
        yield session


@pytest.fixture(scope="module")
def other_upload(other_client: httpx.Client, short_clip: Path) -> dict:
    response = upload(other_client, short_clip)
    assert response.status_code == 202, response.text
    return response.json()


# --- API keys ----------------------------------------------------------------------------


def test_upload_rejects_missing_key(anonymous: httpx.Client, short_clip: Path) -> None:
    response = upload(anonymous, short_clip)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "needs an API key" in response.json()["detail"]


def test_upload_rejects_unknown_key(server: ServerProcess, short_clip: Path) -> None:
    with httpx.Client(base_url=server.base_url, headers=key_headers("lc_not-a-key")) as session:
        response = upload(session, short_clip)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="latentcast", error="invalid_token"'


@pytest.mark.parametrize("path", ["/v1/videos", f"/v1/videos/{UNKNOWN_ID}", f"/v1/videos/{UNKNOWN_ID}/stream",
                                  f"/v1/videos/{UNKNOWN_ID}/index", f"/v1/videos/{UNKNOWN_ID}/scenes",
                                  f"/v1/videos/{UNKNOWN_ID}/frames/0/traversal"])
def test_video_routes_reject_missing_key(anonymous: httpx.Client, path: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_delete_rejects_missing_key(anonymous: httpx.Client) -> None:
    assert anonymous.delete(f"/v1/videos/{UNKNOWN_ID}").status_code == 401


def test_x_api_key_header_accepted(server: ServerProcess, anonymous: httpx.Client) -> None:
    response = anonymous.get("/v1/videos", headers={"X-API-Key": server.api_key})
    assert response.status_code == 200


def test_revoked_key_rejected(server: ServerProcess, anonymous: httpx.Client) -> None:
    key = new_key(server, "revoked later")
    before = anonymous.get("/v1/videos", headers=key_headers(key))
    run_keys_command(server, "revoke", key_id_of(server, "revoked later"))
    after = anonymous.get("/v1/videos", headers=key_headers(key))
    assert before.status_code == 200
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]
    assert after.headers["www-authenticate"].startswith("Bearer")


def test_keys_stored_hashed(server: ServerProcess) -> None:
    database = (server.data_dir / DATABASE_NAME).read_bytes()
    assert server.api_key.encode() not in database
    assert hash_key(server.api_key).encode() in database


# --- ownership ---------------------------------------------------------------------------


@pytest.mark.parametrize("method,suffix", [("GET", ""), ("GET", "/stream"), ("GET", "/index"), ("DELETE", ""),
                                           ("GET", "/scenes"), ("POST", "/links")])
def test_other_keys_video_not_found(other_client: httpx.Client, encoded_carphone: dict, method: str,
                                    suffix: str) -> None:
    body = {"json": {"expires_in": 60}} if suffix == "/links" else {}
    response = other_client.request(method, f"/v1/videos/{encoded_carphone['id']}{suffix}", **body)
    missing = other_client.request(method, f"/v1/videos/{UNKNOWN_ID}{suffix}", **body)
    assert response.status_code == 404
    assert response.json()["detail"] == missing.json()["detail"].replace(UNKNOWN_ID, encoded_carphone["id"])


def test_other_keys_delete_keeps_video(other_client: httpx.Client, client: httpx.Client,
                                       encoded_carphone: dict) -> None:
    other_client.delete(f"/v1/videos/{encoded_carphone['id']}")
    assert client.get(f"/v1/videos/{encoded_carphone['id']}").status_code == 200


def test_list_shows_only_own_videos(other_client: httpx.Client, client: httpx.Client, other_upload: dict,
                                    encoded_carphone: dict) -> None:
    others = [video["id"] for video in other_client.get("/v1/videos").json()]
    own = [video["id"] for video in client.get("/v1/videos").json()]
    assert others == [other_upload["id"]]
    assert other_upload["id"] not in own
    assert encoded_carphone["id"] in own


def test_delete_own_video(other_client: httpx.Client, short_clip: Path, server: ServerProcess) -> None:
    video_id = upload(other_client, short_clip).json()["id"]
    wait_for_encode(other_client, video_id)
    response = other_client.delete(f"/v1/videos/{video_id}")
    assert response.status_code == 204
    assert other_client.get(f"/v1/videos/{video_id}").status_code == 404
    assert not (server.data_dir / "uploads" / video_id).exists()
    assert not (server.data_dir / "streams" / f"{video_id}.lcs").exists()


# --- signed links ------------------------------------------------------------------------


def test_signed_link_streams_without_key(client: httpx.Client, anonymous: httpx.Client,
                                         encoded_carphone: dict) -> None:
    link = signed_link(client, encoded_carphone["id"])
    streamed = anonymous.get(link["stream_url"])
    assert streamed.status_code == 200
    assert streamed.content == client.get(f"/v1/videos/{encoded_carphone['id']}/stream").content


def test_signed_link_reads_metadata_and_index(client: httpx.Client, anonymous: httpx.Client,
                                              encoded_carphone: dict) -> None:
    link = signed_link(client, encoded_carphone["id"])
    metadata = anonymous.get(link["url"])
    index_url = link["stream_url"].replace("/stream?", "/index?")
    assert metadata.status_code == 200
    assert metadata.json()["id"] == encoded_carphone["id"]
    assert anonymous.get(index_url).status_code == 200


def test_signed_link_honours_range(client: httpx.Client, anonymous: httpx.Client, encoded_carphone: dict) -> None:
    link = signed_link(client, encoded_carphone["id"])
    response = anonymous.get(link["stream_url"], headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert len(response.content) == 100


def test_signed_link_body(client: httpx.Client, server: ServerProcess, encoded_carphone: dict) -> None:
    before = time.time()
    link = signed_link(client, encoded_carphone["id"], expires_in=120)
    assert link["url"].startswith(f"{server.base_url}/v1/videos/{encoded_carphone['id']}?expires=")
    assert link["path"] == link["url"].removeprefix(server.base_url)
    assert before + 120 <= link["expires"] <= time.time() + 121


def test_signed_link_not_for_analysis(client: httpx.Client, anonymous: httpx.Client, encoded_carphone: dict) -> None:
    link = signed_link(client, encoded_carphone["id"])
    scenes_url = link["stream_url"].replace("/stream?", "/scenes?")
    assert anonymous.get(scenes_url).status_code == 401


def test_expired_link_forbidden(server: ServerProcess, anonymous: httpx.Client, encoded_carphone: dict) -> None:
    secret = (server.data_dir / SECRET_FILE_NAME).read_text().strip().encode()
    expires = int(time.time()) - 10
    query = urlencode({"expires": expires, "signature": sign_link(secret, encoded_carphone["id"], expires)})
    response = anonymous.get(f"/v1/videos/{encoded_carphone['id']}/stream?{query}")
    assert response.status_code == 403
    assert "expired" in response.json()["detail"]


def test_short_link_expires(client: httpx.Client, anonymous: httpx.Client, encoded_carphone: dict) -> None:
    link = signed_link(client, encoded_carphone["id"], expires_in=1)
    time.sleep(max(0.0, link["expires"] - time.time()) + 1.1)
    assert anonymous.get(link["url"]).status_code == 403


@pytest.mark.parametrize("change", ["signature", "expires", "drop-signature"])
def test_tampered_link_forbidden(client: httpx.Client, anonymous: httpx.Client, encoded_carphone: dict,
                                 change: str) -> None:
    link = signed_link(client, encoded_carphone["id"])
    params = parse_qs(urlsplit(link["stream_url"]).query)
    if change == "signature":
        signature = params["signature"][0]
        url = with_query(link["stream_url"], signature=("0" if signature[0] != "0" else "1") + signature[1:])
    elif change == "expires":
        url = with_query(link["stream_url"], expires=str(int(params["expires"][0]) + 3600))
    else:
        url = link["stream_url"].split("&signature=")[0]
    response = anonymous.get(url)
    assert response.status_code == 403
    assert "signature" in response.json()["detail"]


def test_link_for_other_video_forbidden(client: httpx.Client, anonymous: httpx.Client, encoded_carphone: dict,
                                        short_clip: Path) -> None:
    second = upload(client, short_clip).json()["id"]
    link = signed_link(client, encoded_carphone["id"])
    moved = link["url"].replace(encoded_carphone["id"], second)
    assert anonymous.get(moved).status_code == 403


def test_link_stops_after_owner_revoked(server: ServerProcess, anonymous: httpx.Client, short_clip: Path) -> None:
    key = new_key(server, "revoked link owner")
    with httpx.Client(base_url=server.base_url, timeout=60.0, headers=key_headers(key)) as owner:
        video_id = upload(owner, short_clip).json()["id"]
        link = signed_link(owner, video_id)
    before = anonymous.get(link["url"])
    run_keys_command(server, "revoke", key_id_of(server, "revoked link owner"))
    after = anonymous.get(link["url"])
    assert before.status_code == 200
    assert after.status_code == 403
    assert "revoked" in after.json()["detail"]


@pytest.mark.parametrize("expires_in", [0, 7 * 24 * 3600 + 1, "soon"])
def test_link_rejects_bad_expiry(client: httpx.Client, encoded_carphone: dict, expires_in: object) -> None:
    response = client.post(f"/v1/videos/{encoded_carphone['id']}/links", json={"expires_in": expires_in})
    assert response.status_code == 422


def test_signing_secret_file_private(server: ServerProcess) -> None:
    mode = stat.S_IMODE((server.data_dir / SECRET_FILE_NAME).stat().st_mode)
    assert mode == 0o600


# --- the player ----------------------------------------------------------------------------


def test_player_plays_signed_link(client: httpx.Client, encoded_carphone: dict, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LATENTCAST_API_KEY", raising=False)
    link = signed_link(client, encoded_carphone["id"])
    output = tmp_path / "linked.mp4"
    status = client_main(["play", link["url"], "-o", str(output), "--cache-dir", str(tmp_path / "cache"),
                          "--threads", "1"])
    assert status == 0
    assert len(list(read_frames(output))) == 120


def test_player_starts_signed_link_midway(client: httpx.Client, encoded_carphone: dict, tmp_path: Path) -> None:
    link = signed_link(client, encoded_carphone["id"])
    stats = PlaybackStats()
    with open_client() as http, Player(cache_dir=tmp_path / "cache", threads=1, client=http) as player:
        frames = list(player.frames(link["url"], stats, start_seconds=2.0))
    assert len(frames) == 120 - stats.first_frame
    assert len(frames) < 120


def test_player_plays_with_api_key(server: ServerProcess, encoded_carphone: dict, tmp_path: Path) -> None:
    output = tmp_path / "keyed.mp4"
    url = f"{server.base_url}/v1/videos/{encoded_carphone['id']}/stream"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTCAST_API_KEY": server.api_key}
    result = subprocess.run(
        [sys.executable, "-m", "latentcast_client", "play", url, "-o", str(output), "--cache-dir",
         str(tmp_path / "cache"), "--threads", "1"],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(read_frames(output))) == 120


def test_player_without_key_explains(server: ServerProcess, encoded_carphone: dict, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("LATENTCAST_API_KEY", raising=False)
    url = f"{server.base_url}/v1/videos/{encoded_carphone['id']}"
    status = client_main(["play", url, "--cache-dir", str(tmp_path / "cache")])
    error = capsys.readouterr().err
    assert status == 1
    assert "HTTP 401" in error
    assert "pass an API key with --api-key or $LATENTCAST_API_KEY" in error


def test_player_api_key_option_overrides_env(server: ServerProcess, encoded_carphone: dict, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("LATENTCAST_API_KEY", server.api_key)
    url = f"{server.base_url}/v1/videos/{encoded_carphone['id']}"
    status = client_main(["play", url, "--api-key", "lc_wrong", "--cache-dir", str(tmp_path / "cache")])
    error = capsys.readouterr().err
    assert status == 1
    assert "the API key is not valid" in error
    assert "check the API key, or play a signed link" in error


# --- public routes -------------------------------------------------------------------------


def test_public_routes_need_no_key(anonymous: httpx.Client) -> None:
    manifest = anonymous.get("/v1/decoder")
    sha256 = manifest.headers["x-bundle-sha256"]
    assert manifest.status_code == 200
    assert anonymous.get("/v1/decoder/entropy.json").status_code == 200
    assert anonymous.get(f"/v1/bundles/{sha256}").status_code == 200
    assert anonymous.get(f"/v1/bundles/{sha256}/decoder.onnx").status_code == 200
    assert anonymous.get("/v1/qualities").status_code == 200
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/metrics").status_code == 200
    assert anonymous.get("/docs").status_code == 200


# --- rate limits and the signing secret setting -------------------------------------------


@pytest.fixture(scope="module")
def limited_server(launch_server: Callable[..., ServerProcess], bundle_cache_dir: Path, tiny_levels_dir: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    """A server that allows 2 requests at once and 1 a minute per key, and signs links with FIXED_SECRET."""
    return launch_server(
        tmp_path_factory.mktemp("limited") / "data", cache_dir=bundle_cache_dir, weights_dir=tiny_levels_dir,
        rate_limit_per_minute=1, rate_limit_burst=2, signing_secret=FIXED_SECRET,
    )


def test_rate_limit_returns_429(limited_server: ServerProcess) -> None:
    with httpx.Client(base_url=limited_server.base_url, headers=key_headers(limited_server.api_key)) as session:
        statuses = [session.get("/v1/videos").status_code for _ in range(3)]
        rejected = session.get("/v1/videos")
    assert statuses == [200, 200, 429]
    assert rejected.status_code == 429
    assert 1 <= int(rejected.headers["retry-after"]) <= 60


def test_rate_limit_per_key(limited_server: ServerProcess) -> None:
    key = new_key(limited_server, "second key")
    with httpx.Client(base_url=limited_server.base_url, headers=key_headers(key)) as session:
        statuses = [session.get("/v1/videos").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_signing_secret_setting_used(limited_server: ServerProcess, short_clip: Path) -> None:
    key = new_key(limited_server, "link owner")
    with httpx.Client(base_url=limited_server.base_url, headers=key_headers(key)) as session:
        video_id = upload(session, short_clip).json()["id"]
        link = session.post(f"/v1/videos/{video_id}/links", json={"expires_in": 60}).json()
    query = parse_qs(urlsplit(link["url"]).query)
    expected = sign_link(FIXED_SECRET.encode(), video_id, int(query["expires"][0]))
    assert query["signature"] == [expected]
    assert not (limited_server.data_dir / SECRET_FILE_NAME).exists()

