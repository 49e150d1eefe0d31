"""Content-addressed bundle routes: /v1/bundles/{sha256} and its files, on the shared server."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from latentcast_client.bundle import BUNDLE_FILES, Manifest

UNKNOWN_SHA256 = "0" * 64


@pytest.fixture(scope="module")
def level_shas(client: httpx.Client) -> dict[int, str]:
    return {level["quality"]: level["bundle_sha256"] for level in client.get("/v1/qualities").json()}


@pytest.mark.parametrize("quality", [1, 2])
def test_manifest_by_sha256(client: httpx.Client, level_shas: dict[int, str], quality: int) -> None:
    sha256 = level_shas[quality]
    response = client.get(f"/v1/bundles/{sha256}")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == sha256
    assert response.headers["x-bundle-sha256"] == sha256
    assert response.content == client.get("/v1/decoder", params={"quality": quality}).content


def test_manifest_by_sha256_is_immutable(client: httpx.Client, level_shas: dict[int, str]) -> None:
    response = client.get(f"/v1/bundles/{level_shas[2]}")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_file_by_sha256_matches_manifest(client: httpx.Client, level_shas: dict[int, str], name: str) -> None:
    manifest = Manifest.from_bytes(client.get(f"/v1/bundles/{level_shas[2]}").content)
    response = client.get(f"/v1/bundles/{level_shas[2]}/{name}")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == manifest.files[name]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_unknown_sha256_not_found(client: httpx.Client) -> None:
    response = client.get(f"/v1/bundles/{UNKNOWN_SHA256}")
    assert response.status_code == 404
    assert response.json()["detail"] == (
        f"no decoder bundle with sha256 {UNKNOWN_SHA256} on this server; GET /v1/qualities lists the bundles it has"
    )


def test_unknown_sha256_file_not_found(client: httpx.Client) -> None:
    response = client.get(f"/v1/bundles/{UNKNOWN_SHA256}/{BUNDLE_FILES[0]}")
    assert response.status_code == 404


@pytest.mark.parametrize("sha256", ["abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65])
def test_malformed_sha256_rejected(client: httpx.Client, sha256: str) -> None:
    response = client.get(f"/v1/bundles/{sha256}")
    assert response.status_code == 422
    assert response.json()["detail"] == f"invalid bundle sha256 {sha256!r}: expected 64 lowercase hex digits"


def test_malformed_sha256_file_rejected(client: httpx.Client) -> None:
    response = client.get(f"/v1/bundles/{'A' * 64}/{BUNDLE_FILES[0]}")
    assert response.status_code == 422


@pytest.mark.parametrize("name", ["manifest.json", "model.safetensors", "..%2Fmanifest.json"])
def test_unknown_file_by_sha256_not_found(client: httpx.Client, level_shas: dict[int, str], name: str) -> None:
    response = client.get(f"/v1/bundles/{level_shas[1]}/{name}")
    assert response.status_code == 404
