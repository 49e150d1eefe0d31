from __future__ import annotations

import hashlib

import httpx
import pytest

from latentcast_client.bundle import BUNDLE_FILES, Manifest


def test_manifest_hash_matches_header(client: httpx.Client) -> None:
    response = client.get("/v1/decoder")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert hashlib.sha256(response.content).hexdigest() == response.headers["x-bundle-sha256"]


def test_manifest_matches_health(client: httpx.Client) -> None:
    manifest = Manifest.from_bytes(client.get("/v1/decoder").content)
    health = client.get("/healthz").json()
    assert manifest.model_id == health["model_id"]
    assert client.get("/v1/decoder").headers["x-bundle-sha256"] == health["bundle_sha256"]


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_bundle_file_hash_matches_manifest(client: httpx.Client, name: str) -> None:
    manifest = Manifest.from_bytes(client.get("/v1/decoder").content)
    response = client.get(f"/v1/decoder/{name}")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == manifest.files[name]


@pytest.mark.parametrize("name", ["manifest.json", "model.safetensors", "decoder.onnx.part"])
def test_unknown_bundle_file_not_found(client: httpx.Client, name: str) -> None:
    response = client.get(f"/v1/decoder/{name}")
    assert response.status_code == 404
    assert response.json()["detail"] == (
        f"no bundle file named '{name}'; the bundle files are decoder.onnx, entropy.json"
    )


def test_bundle_path_outside_folder_not_found(client: httpx.Client) -> None:
    response = client.get("/v1/decoder/..%2Fmanifest.json")
    assert response.status_code == 404
