from __future__ import annotations

import cv2
import httpx
import numpy as np

from .conftest import Upload

UNKNOWN_ID = "0" * 32
CARPHONE_FRAMES = 120


def test_traversal_returns_png(client: httpx.Client, carphone_upload: Upload) -> None:
    response = client.get(f"/v1/videos/{carphone_upload.video_id}/frames/10/traversal",
                          params={"count": 2, "steps": 3})
    image = cv2.imdecode(np.frombuffer(response.content, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert image is not None
    assert image.shape[0] > 0
    assert image.shape[1] > 0


def test_traversal_value_mode_last_frame(client: httpx.Client, carphone_upload: Upload) -> None:
    last = CARPHONE_FRAMES - 1
    response = client.get(f"/v1/videos/{carphone_upload.video_id}/frames/{last}/traversal",
                          params={"count": 1, "steps": 2, "mode": "value"})
    image = cv2.imdecode(np.frombuffer(response.content, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert response.status_code == 200
    assert image is not None


def test_traversal_frame_out_of_range(client: httpx.Client, carphone_upload: Upload) -> None:
    video_id = carphone_upload.video_id
    for frame in (CARPHONE_FRAMES, -1):
        response = client.get(f"/v1/videos/{video_id}/frames/{frame}/traversal")
        assert response.status_code == 404
        assert response.json()["detail"] == (
            f"video {video_id} has {CARPHONE_FRAMES} frames; frame {frame} is not in 0..{CARPHONE_FRAMES - 1}"
        )


def test_traversal_unknown_video(client: httpx.Client) -> None:
    response = client.get(f"/v1/videos/{UNKNOWN_ID}/frames/0/traversal")
    assert response.status_code == 404
    assert response.json()["detail"] == f"video {UNKNOWN_ID} not found"


def test_traversal_rejects_bad_parameters(client: httpx.Client, carphone_upload: Upload) -> None:
    url = f"/v1/videos/{carphone_upload.video_id}/frames/0/traversal"
    for params in ({"count": 0}, {"count": 9}, {"steps": 1}, {"span": 0}, {"span": "wide"}, {"mode": "pixel"}):
        response = client.get(url, params=params)
        assert response.status_code == 422, params


def test_traversal_rejects_non_integer_frame(client: httpx.Client, carphone_upload: Upload) -> None:
    response = client.get(f"/v1/videos/{carphone_upload.video_id}/frames/first/traversal")
    assert response.status_code == 422


def test_scenes_cover_all_frames(client: httpx.Client, carphone_upload: Upload) -> None:
    response = client.get(f"/v1/videos/{carphone_upload.video_id}/scenes")
    body = response.json()
    scenes = body["scenes"]
    assert response.status_code == 200
    assert body["video_id"] == carphone_upload.video_id
    assert len(scenes) >= 1
    assert scenes[0]["start"] == 0
    assert scenes[-1]["end"] == CARPHONE_FRAMES
    for scene in scenes:
        assert scene["start"] < scene["end"], scene
    for previous, following in zip(scenes, scenes[1:]):
        assert previous["end"] == following["start"], (previous, following)


def test_scenes_unknown_video(client: httpx.Client) -> None:
    response = client.get(f"/v1/videos/{UNKNOWN_ID}/scenes")
    assert response.status_code == 404
    assert response.json()["detail"] == f"video {UNKNOWN_ID} not found"
