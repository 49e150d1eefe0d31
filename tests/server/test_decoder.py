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


def test_manifest_by_quality_differs_from_default(client: httpx.Client) -> None:
    default = client.get("/v1/decoder")
    level_two = client.get("/v1/decoder", params={"quality": 2})
    assert level_two.status_code == 200
    assert Manifest.from_bytes(level_two.content).model_id.startswith("quality-2-")
    assert level_two.headers["x-bundle-sha256"] != default.headers["x-bundle-sha256"]


def test_manifest_default_quality_same_as_no_quality(client: httpx.Client) -> None:
    default_quality = client.get("/healthz").json()["default_quality"]
    by_number = client.get("/v1/decoder", params={"quality": default_quality})
    assert by_number.content == client.get("/v1/decoder").content


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_bundle_file_by_quality_matches_manifest(client: httpx.Client, name: str) -> None:
    manifest = Manifest.from_bytes(client.get("/v1/decoder", params={"quality": 2}).content)
    response = client.get(f"/v1/decoder/{name}", params={"quality": 2})
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == manifest.files[name]


@pytest.mark.parametrize(("quality", "shown"), [("9", "9"), ("0", "0"), ("two", "'two'"), ("", "''")])
def test_manifest_unknown_quality_rejected(client: httpx.Client, quality: str, shown: str) -> None:
    response = client.get("/v1/decoder", params={"quality": quality})
    assert response.status_code == 422
    assert response.json()["detail"] == f"unknown quality level {shown}; the valid levels are 1, 2"


def test_bundle_file_unknown_quality_rejected(client: httpx.Client) -> None:
    response = client.get(f"/v1/decoder/{BUNDLE_FILES[0]}", params={"quality": 7})
    assert response.status_code == 422
    assert response.json()["detail"] == "unknown quality level 7; the valid levels are 1, 2"


def test_residual_tables_served_where_listed(client: httpx.Client) -> None:
    manifest = Manifest.from_bytes(client.get("/v1/decoder", params={"quality": 2}).content)
    response = client.get("/v1/decoder/inter.json", params={"quality": 2})
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == manifest.files["inter.json"]


def test_residual_tables_not_found_for_keyframe_only_level(client: httpx.Client) -> None:
    response = client.get("/v1/decoder/inter.json", params={"quality": 1})
    assert response.status_code == 404
