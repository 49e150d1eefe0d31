from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from latentcast.server.storage import is_video_id
from latentcast_client.metrics import psnr
from latentcast_client.player import PlaybackStats
from latentcast_client.playback import Player
from latentcast_client.remote import open_client
from latentcast_client.stream import PacketType, StreamReader
from latentcast_client.video import read_frames

from .conftest import MAX_FRAMES, MAX_HEIGHT, MAX_WIDTH, SHORT_CLIP_FRAMES, Upload, upload, wait_for_encode

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
    assert encoded_carphone["quality"] == health["default_quality"]
    assert encoded_carphone["links"]["decoder"] == f"/v1/bundles/{health['bundle_sha256']}"


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


@pytest.fixture(scope="module")
def full_stream(encoded_carphone: dict, client: httpx.Client) -> bytes:
    response = client.get(f"/v1/videos/{encoded_carphone['id']}/stream")
    if response.status_code != 200:
        pytest.fail(f"full stream request returned {response.status_code}: {response.text}")
    return response.content


def stream_range(client: httpx.Client, video_id: str, header: str, **extra_headers: str) -> httpx.Response:
    return client.get(f"/v1/videos/{video_id}/stream", headers={"Range": header, **extra_headers})


@pytest.fixture(scope="module")
def carphone_index(encoded_carphone: dict, client: httpx.Client) -> dict:
    response = client.get(f"/v1/videos/{encoded_carphone['id']}/index")
    if response.status_code != 200:
        pytest.fail(f"index request returned {response.status_code}: {response.text}")
    return response.json()


def test_index_lists_every_frame(carphone_index: dict) -> None:
    frames = [keyframe["frame"] for keyframe in carphone_index["keyframes"]]
    assert carphone_index["frame_count"] == 120
    assert frames == list(range(120))


def test_index_offsets_increase(carphone_index: dict, full_stream: bytes) -> None:
    offsets = [keyframe["offset"] for keyframe in carphone_index["keyframes"]]
    assert all(later > earlier for earlier, later in zip(offsets, offsets[1:]))
    assert offsets[0] == carphone_index["header_bytes"]
    assert offsets[-1] < len(full_stream)


def test_index_matches_stream_header(carphone_index: dict, full_stream: bytes) -> None:
    reader = StreamReader()
    reader.feed(full_stream[: carphone_index["header_bytes"]])
    assert reader.header is not None
    assert carphone_index["fps_num"] == reader.header.fps.numerator
    assert carphone_index["fps_den"] == reader.header.fps.denominator


@pytest.mark.parametrize("frame", [0, 1, 57, 119])
def test_index_offset_range_parses_as_packet(
    carphone_index: dict, encoded_carphone: dict, client: httpx.Client, frame: int
) -> None:
    header_bytes = carphone_index["header_bytes"]
    offset = carphone_index["keyframes"][frame]["offset"]
    header = stream_range(client, encoded_carphone["id"], f"bytes=0-{header_bytes - 1}")
    tail = stream_range(client, encoded_carphone["id"], f"bytes={offset}-")
    reader = StreamReader(first_index=frame)
    packets = reader.feed(header.content) + reader.feed(tail.content)
    reader.finish()
    assert header.status_code == 206
    assert tail.status_code == 206
    assert packets[0].index == frame
    assert len(packets) == 120 - frame


def test_index_before_encoded_conflict(carphone_upload: Upload) -> None:
    response = carphone_upload.early_index
    assert response.status_code == 409
    assert "its index is available once it is 'encoded'" in response.json()["detail"]


def test_index_unknown_video_not_found(client: httpx.Client) -> None:
    response = client.get(f"/v1/videos/{UNKNOWN_ID}/index")
    assert response.status_code == 404
    assert response.json()["detail"] == f"video {UNKNOWN_ID} not found"


def test_stream_full_accepts_ranges(encoded_carphone: dict, client: httpx.Client) -> None:
    response = client.get(f"/v1/videos/{encoded_carphone['id']}/stream")
    assert response.status_code == 200
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-range" not in response.headers


def test_stream_range_closed(encoded_carphone: dict, client: httpx.Client, full_stream: bytes) -> None:
    total = len(full_stream)
    response = stream_range(client, encoded_carphone["id"], "bytes=10-99")
    assert response.status_code == 206
    assert response.content == full_stream[10:100]
    assert response.headers["content-range"] == f"bytes 10-99/{total}"
    assert response.headers["content-length"] == "90"
    assert response.headers["content-type"] == STREAM_MEDIA_TYPE
    assert response.headers["accept-ranges"] == "bytes"


def test_stream_range_first_and_last_byte(encoded_carphone: dict, client: httpx.Client, full_stream: bytes) -> None:
    total = len(full_stream)
    first = stream_range(client, encoded_carphone["id"], "bytes=0-0")
    last = stream_range(client, encoded_carphone["id"], f"bytes={total - 1}-{total - 1}")
    assert first.status_code == 206
    assert first.content == full_stream[:1]
    assert first.headers["content-range"] == f"bytes 0-0/{total}"
    assert last.status_code == 206
    assert last.content == full_stream[-1:]
    assert last.headers["content-range"] == f"bytes {total - 1}-{total - 1}/{total}"
    assert last.headers["content-length"] == "1"


def test_stream_range_spans_chunks(encoded_carphone: dict, client: httpx.Client, full_stream: bytes) -> None:
    # The route reads the file in 256 KiB chunks, so a range of the whole stream crosses chunk
    # boundaries whenever the stream is larger than one chunk.
    total = len(full_stream)
    response = stream_range(client, encoded_carphone["id"], f"bytes=1-{total - 2}")
    assert response.status_code == 206
    assert response.content == full_stream[1:-1]
    assert response.headers["content-length"] == str(total - 2)


def test_stream_range_end_past_total_clamped(encoded_carphone: dict, client: httpx.Client, full_stream: bytes) -> None:
    total = len(full_stream)
    response = stream_range(client, encoded_carphone["id"], f"bytes={total - 5}-{total * 2}")
    assert response.status_code == 206
    assert response.content == full_stream[-5:]
    assert response.headers["content-range"] == f"bytes {total - 5}-{total - 1}/{total}"
    assert response.headers["content-length"] == "5"


def test_stream_range_open_ended(encoded_carphone: dict, client: httpx.Client, full_stream: bytes) -> None:
    total = len(full_stream)
    response = stream_range(client, encoded_carphone["id"], "bytes=100-")
    assert response.status_code == 206
    assert response.content == full_stream[100:]
    assert response.headers["content-range"] == f"bytes 100-{total - 1}/{total}"
    assert response.headers["content-length"] == str(total - 100)


def test_stream_range_suffix(encoded_carphone: dict, client: httpx.Client, full_stream: bytes) -> None:
    total = len(full_stream)
    response = stream_range(client, encoded_carphone["id"], "bytes=-50")
    assert response.status_code == 206
    assert response.content == full_stream[-50:]
    assert response.headers["content-range"] == f"bytes {total - 50}-{total - 1}/{total}"
    assert response.headers["content-length"] == "50"


def test_stream_range_suffix_longer_than_stream(
    encoded_carphone: dict, client: httpx.Client, full_stream: bytes
) -> None:
    total = len(full_stream)
    response = stream_range(client, encoded_carphone["id"], f"bytes=-{total + 1000}")
    assert response.status_code == 206
    assert response.content == full_stream
    assert response.headers["content-range"] == f"bytes 0-{total - 1}/{total}"


@pytest.mark.parametrize("start_offset", [0, 1000])
def test_stream_range_unsatisfiable(
    encoded_carphone: dict, client: httpx.Client, full_stream: bytes, start_offset: int
) -> None:
    total = len(full_stream)
    header = f"bytes={total + start_offset}-"
    response = stream_range(client, encoded_carphone["id"], header)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{total}"
    assert response.json()["detail"] == (
        f"the range {header!r} selects no byte of the {total}-byte stream of video {encoded_carphone['id']}; "
        f"request a range that starts below {total}, or a suffix of at least 1 byte"
    )


def test_stream_range_zero_suffix_unsatisfiable(
    encoded_carphone: dict, client: httpx.Client, full_stream: bytes
) -> None:
    response = stream_range(client, encoded_carphone["id"], "bytes=-0")
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(full_stream)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=abc", "bytes=9-5", "lines=0-9"])
def test_stream_range_ignored_sends_full(
    encoded_carphone: dict, client: httpx.Client, full_stream: bytes, header: str
) -> None:
    response = stream_range(client, encoded_carphone["id"], header)
    assert response.status_code == 200
    assert response.content == full_stream
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == str(len(full_stream))


def test_stream_range_with_if_range_sends_full(
    encoded_carphone: dict, client: httpx.Client, full_stream: bytes
) -> None:
    response = stream_range(client, encoded_carphone["id"], "bytes=0-9", **{"If-Range": '"some-etag"'})
    assert response.status_code == 200
    assert response.content == full_stream


def test_stream_range_unknown_video_not_found(client: httpx.Client) -> None:
    response = stream_range(client, UNKNOWN_ID, "bytes=0-9")
    assert response.status_code == 404


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
    uploads_dir = server.data_dir / "uploads"
    # The folder also contains the uploads of other tests' keys, which this client cannot list.
    before = {path.name for path in uploads_dir.iterdir()}
    assert upload(client, notes).status_code == 415
    after = {path.name for path in uploads_dir.iterdir()}
    assert after == before
    assert all(is_video_id(name) for name in after)


def test_stored_files_named_by_id(client: httpx.Client, server, shared_data: Path, encoded_carphone: dict) -> None:
    uploads = server.data_dir / "uploads"
    streams = server.data_dir / "streams"
    assert (uploads / encoded_carphone["id"]).read_bytes() == (shared_data / "carphone.mp4").read_bytes()
    assert all(is_video_id(path.name) for path in uploads.iterdir())
    assert all(is_video_id(path.name.removesuffix(".lcs")) for path in streams.iterdir())


def test_upload_without_quality_stores_default(carphone_upload: Upload) -> None:
    video = carphone_upload.created.json()
    assert video["quality"] == 1
    assert video["links"]["decoder"] == "/v1/decoder?quality=1"


@pytest.fixture(scope="module")
def carphone_at_quality_2(client: httpx.Client, shared_data: Path) -> dict:
    created = upload(client, shared_data / "carphone.mp4", params={"quality": 2})
    if created.status_code != 202:
        pytest.fail(f"upload of carphone.mp4 at quality 2 returned {created.status_code}: {created.text}")
    assert created.json()["quality"] == 2
    return wait_for_encode(client, created.json()["id"])


def test_upload_quality_2_encodes_with_level_2(carphone_at_quality_2: dict, client: httpx.Client) -> None:
    level_two = client.get("/v1/decoder", params={"quality": 2}).headers["x-bundle-sha256"]
    assert carphone_at_quality_2["status"] == "encoded"
    assert carphone_at_quality_2["quality"] == 2
    assert carphone_at_quality_2["bundle_sha256"] == level_two
    assert carphone_at_quality_2["model_id"].startswith("quality-2-")


def test_upload_quality_2_stream_header(carphone_at_quality_2: dict, client: httpx.Client) -> None:
    reader = StreamReader()
    reader.feed(client.get(f"/v1/videos/{carphone_at_quality_2['id']}/stream").content)
    assert reader.header.quality == 2
    assert reader.header.bundle_sha256 == carphone_at_quality_2["bundle_sha256"]


def test_quality_2_stream_has_p_frames(carphone_at_quality_2: dict, client: httpx.Client) -> None:
    packets = StreamReader().feed(client.get(f"/v1/videos/{carphone_at_quality_2['id']}/stream").content)
    assert PacketType.PREDICTED in {packet.type for packet in packets}


def test_index_lists_only_keyframes(carphone_at_quality_2: dict, client: httpx.Client) -> None:
    packets = StreamReader().feed(client.get(f"/v1/videos/{carphone_at_quality_2['id']}/stream").content)
    index = client.get(f"/v1/videos/{carphone_at_quality_2['id']}/index").json()
    intra = [packet.index for packet in packets if packet.type == PacketType.INTRA]
    assert [entry["frame"] for entry in index["keyframes"]] == intra


def test_levels_differ_in_size(carphone_at_quality_2: dict, encoded_carphone: dict) -> None:
    # Level 2 has larger latents but also P-frames, so only the difference is certain.
    assert encoded_carphone["bytes"] != carphone_at_quality_2["bytes"]


def test_player_decodes_quality_2_with_its_bundle(
    carphone_at_quality_2: dict, server, shared_data: Path, tmp_path: Path
) -> None:
    stats = PlaybackStats()
    url = f"{server.base_url}/v1/videos/{carphone_at_quality_2['id']}/stream"
    with open_client(server.api_key, url) as client, Player(cache_dir=tmp_path / "cache", threads=1,
                                                             client=client) as player:
        frames = list(player.frames(url, stats))
    sources = read_frames(shared_data / "carphone.mp4")
    player_psnr = float(np.mean([psnr(source, frame) for source, frame in zip(sources, frames)]))
    cached = [path.name for path in (tmp_path / "cache" / "bundles").iterdir()]
    assert len(frames) == 120
    assert cached == [carphone_at_quality_2["bundle_sha256"]]
    assert player_psnr == pytest.approx(carphone_at_quality_2["psnr"], abs=0.05)


def test_upload_quality_form_field(client: httpx.Client, short_clip: Path) -> None:
    response = upload(client, short_clip, data={"quality": "2"})
    assert response.status_code == 202
    assert response.json()["quality"] == 2
    assert client.get(response.headers["location"]).json()["quality"] == 2


def test_upload_same_quality_in_query_and_form(client: httpx.Client, short_clip: Path) -> None:
    response = upload(client, short_clip, params={"quality": "2"}, data={"quality": "2"})
    assert response.status_code == 202
    assert response.json()["quality"] == 2


@pytest.mark.parametrize(("quality", "shown"), [("3", "3"), ("0", "0"), ("best", "'best'")])
def test_upload_unknown_quality_query_rejected(client: httpx.Client, short_clip: Path, quality: str,
                                               shown: str) -> None:
    response = upload(client, short_clip, params={"quality": quality})
    assert response.status_code == 422
    assert response.json()["detail"] == f"unknown quality level {shown}; the valid levels are 1, 2"


def test_upload_unknown_quality_field_rejected(client: httpx.Client, server, short_clip: Path) -> None:
    before = {video["id"] for video in client.get("/v1/videos").json()}
    response = upload(client, short_clip, data={"quality": "5"})
    after = {video["id"] for video in client.get("/v1/videos").json()}
    assert response.status_code == 422
    assert response.json()["detail"] == "unknown quality level 5; the valid levels are 1, 2"
    assert after == before
    assert list((server.data_dir / "uploads").glob("*.part")) == []


def test_upload_conflicting_qualities_rejected(client: httpx.Client, short_clip: Path) -> None:
    response = upload(client, short_clip, params={"quality": "1"}, data={"quality": "2"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "the quality query parameter ('1') and form field ('2') differ; send only one"
    )


def test_short_clip_at_quality_2_encodes(client: httpx.Client, short_clip: Path) -> None:
    created = upload(client, short_clip, params={"quality": "2"})
    video = wait_for_encode(client, created.json()["id"])
    assert video["status"] == "encoded"
    assert video["frames"] == SHORT_CLIP_FRAMES
    assert video["quality"] == 2
