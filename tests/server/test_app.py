from __future__ import annotations

import httpx


def test_health_ok(client: httpx.Client) -> None:
    response = client.get("/healthz")
    health = response.json()
    assert response.status_code == 200
    assert health["status"] == "ok"
    assert health["model_id"]
    assert len(health["bundle_sha256"]) == 64


def test_docs_served(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_openapi_describes_upload(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    upload = schema["paths"]["/v1/videos"]["post"]
    body = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["description"] == (
        "Upload a video as multipart field 'file'; it is checked, stored and queued for encoding."
    )
    assert body["required"] == ["file"]
    assert {"202", "413", "415", "422"} <= set(upload["responses"])


def test_restart_keeps_encoded_video(server, client: httpx.Client, encoded_carphone: dict) -> None:
    stream_before = client.get(f"/v1/videos/{encoded_carphone['id']}/stream").content
    server.restart()
    video = client.get(f"/v1/videos/{encoded_carphone['id']}").json()
    stream_after = client.get(f"/v1/videos/{encoded_carphone['id']}/stream").content
    assert video["status"] == "encoded"
    assert video["frames"] == 120
    assert video["bundle_sha256"] == encoded_carphone["bundle_sha256"]
    assert stream_after == stream_before
