from __future__ import annotations

from pathlib import Path

import httpx

from latentcast.server.storage import is_video_id
from latentcast_client.stream import StreamReader

from .conftest import MAX_FRAMES, MAX_HEIGHT, MAX_WIDTH, Upload, upload

STREAM_MEDIA_TYPE = "application/vnd.latentcast.stream"
UNKNOWN_ID = "0" * 32


def test_upload_video_accepted(carphone_upload: Upload) -> None:
    response = carphone_upload.created
    video = response.json()
    assert response.status_code == 202
    assert len(video["id"]) == 32
    assert video["filename"] == "carphone.mp4"
    assert video["status"] in ("queued", "encoding")
    assert (video["width"], video["height"], video["frame_count"]) == (176, 144, 120)
    assert video["links"]["self"] == f"/v1/videos/{video['id']}"
    assert video["links"]["stream"] == f"/v1/videos/{video['id']}/stream"
    assert response.headers["location"] == video["links"]["self"]


def test_stream_before_encoded_conflict(carphone_upload: Upload) -> None:
    # Requested right after the upload: the encode of 120 frames takes seconds, the request milliseconds.
    response = carphone_upload.early_stream
    status = response.json()["detail"].split("'")[1]
    assert response.status_code == 409
    assert status in ("queued", "encoding")
    assert response.json()["detail"] == (
        f"video {carphone_upload.video_id} has status '{status}'; its stream is available once it is 'encoded'"
    )


def test_upload_video_reaches_encoded(encoded_carphone: dict, client: httpx.Client) -> None:
    health = client.get("/healthz").json()
    assert encoded_carphone["status"] == "encoded"
    assert encoded_carphone["progress"] == 1.0
    assert encoded_carphone["error"] is None
    assert encoded_carphone["frames"] == 120
    assert encoded_carphone["bytes"] > 0
    assert encoded_carphone["bpp"] > 0
    assert encoded_carphone["psnr"] > 0
    assert encoded_carphone["encode_fps"] > 0
    assert encoded_carphone["model_id"] == health["model_id"]
    assert encoded_carphone["bundle_sha256"] == health["bundle_sha256"]


def test_stream_encoded_video_parses(encoded_carphone: dict, client: httpx.Client) -> None:
    response = client.get(f"/v1/videos/{encoded_carphone['id']}/stream")
    reader = StreamReader()
    packets = reader.feed(response.content)
    reader.finish()
    assert response.status_code == 200
    assert response.headers["content-type"] == STREAM_MEDIA_TYPE
    assert int(response.headers["content-length"]) == len(response.content)
    assert len(response.content) == encoded_carphone["bytes"]
    assert (reader.header.width, reader.header.height) == (176, 144)
    assert reader.header.frame_count == 120
    assert reader.header.bundle_sha256 == encoded_carphone["bundle_sha256"]
    assert len(packets) == 120


def test_stream_arrives_in_chunks(encoded_carphone: dict, client: httpx.Client) -> None:
    reader = StreamReader()
    packets = 0
    with client.stream("GET", f"/v1/videos/{encoded_carphone['id']}/stream") as response:
        for chunk in response.iter_bytes(4096):
            packets += len(reader.feed(chunk))
    reader.finish()
    assert packets == 120


def test_list_videos_newest_first(encoded_carphone: dict, client: httpx.Client) -> None:
    response = client.get("/v1/videos")
    videos = response.json()
    created = [video["created_at"] for video in videos]
    assert response.status_code == 200
    assert encoded_carphone["id"] in [video["id"] for video in videos]
    assert created == sorted(created, reverse=True)


def test_read_unknown_video_not_found(client: httpx.Client) -> None:
    response = client.get(f"/v1/videos/{UNKNOWN_ID}")
    assert response.status_code == 404
    assert response.json()["detail"] == f"video {UNKNOWN_ID} not found"


def test_read_malformed_id_not_found(client: httpx.Client) -> None:
    response = client.get("/v1/videos/not-an-id")
    assert response.status_code == 404
    assert response.json()["detail"] == "video not-an-id not found"


def test_stream_unknown_video_not_found(client: httpx.Client) -> None:
    response = client.get(f"/v1/videos/{UNKNOWN_ID}/stream")
    assert response.status_code == 404
    assert response.json()["detail"] == f"video {UNKNOWN_ID} not found"


def test_upload_rejects_non_video(client: httpx.Client, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("meeting notes, not a video\n" * 20)
    response = upload(client, notes)
    assert response.status_code == 415
    assert response.json()["detail"] == (
        "the uploaded file 'notes.txt' is not a recognised video: its first bytes match no known container or "
        "stream signature; upload MP4/MOV, Matroska/WebM, AVI, MPEG-TS, MPEG-PS, FLV, Ogg, ASF/WMV, IVF, "
        "YUV4MPEG2 or an H.264/H.265 Annex-B stream"
    )


def test_upload_rejects_truncated_mp4(client: httpx.Client, shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / "carphone.mp4").read_bytes()
    cut = tmp_path / "carphone-cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 10])
    response = upload(client, cut)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        "the uploaded file 'carphone-cut.mp4' is a truncated MP4/QuickTime file: the 'mdat' box at byte "
    )


def test_upload_rejects_frame_size_over_limit(client: httpx.Client, shared_data: Path) -> None:
    response = upload(client, shared_data / "bigbuckbunny.mp4")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"the uploaded file 'bigbuckbunny.mp4' has frames of 1280x720, over the limit of {MAX_WIDTH}x{MAX_HEIGHT} "
        "pixels; scale the video down before uploading"
    )


def test_upload_rejects_frame_count_over_limit(client: httpx.Client, shared_data: Path) -> None:
    response = upload(client, shared_data / "basketball.mp4")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"the uploaded file 'basketball.mp4' has 300 frames, over the limit of {MAX_FRAMES} frames; "
        "upload a shorter video"
    )


def test_rejected_uploads_leave_no_files(client: httpx.Client, server, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    assert upload(client, notes).status_code == 415
    stored_ids = {video["id"] for video in client.get("/v1/videos").json()}
    uploads = {path.name for path in (server.data_dir / "uploads").iterdir()}
    assert uploads == stored_ids


def test_stored_files_named_by_id(client: httpx.Client, server, shared_data: Path, encoded_carphone: dict) -> None:
    uploads = server.data_dir / "uploads"
    streams = server.data_dir / "streams"
    assert (uploads / encoded_carphone["id"]).read_bytes() == (shared_data / "carphone.mp4").read_bytes()
    assert all(is_video_id(path.name) for path in uploads.iterdir())
    assert all(is_video_id(path.name.removesuffix(".lcs")) for path in streams.iterdir())
