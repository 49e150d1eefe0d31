"""Player, play and decode_file: streams from a real local server or a file, into mp4 and a window."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from latentcast_client.bundle import DECODER_FILE
from latentcast_client.errors import BundleError, ServerError, StartTimeError, StreamError
from latentcast_client.playback import FrameWindow, Player, decode_file, gui_unavailable_reason, play
from latentcast_client.player import PlaybackStats
from latentcast_client.video import read_frames

from .conftest import PREDICTED_KEYINT
from .stream_server import CHUNK
from .streams import damage_packet, packet_spans


def assert_frames_match(frames, expected) -> None:
    assert len(frames) == len(expected)
    for frame, reference in zip(frames, expected):
        assert np.abs(frame.astype(np.int16) - reference.astype(np.int16)).max() <= 1


def manifest_requests(site, sha256: str) -> int:
    return site.requests().count(f"GET /{site.path.name}/v1/bundles/{sha256}")


@pytest.fixture()
def player(tmp_path):
    with Player(cache_dir=tmp_path / "cache", threads=1) as instance:
        yield instance


def test_frames_match_reference(player, site, encoded_clip):
    frames = list(player.frames(site.stream_url()))
    assert_frames_match(frames, encoded_clip.reference)


def test_play_writes_mp4(player, site, encoded_clip, tmp_path):
    output = tmp_path / "out" / "clip.mp4"
    stats = player.play(site.stream_url(), output)
    frames = list(read_frames(output))
    assert len(frames) == encoded_clip.header.frame_count
    assert frames[0].shape == (encoded_clip.header.height, encoded_clip.header.width, 3)
    assert stats.frames == encoded_clip.header.frame_count
    assert stats.bytes_received == len(encoded_clip.data)


def test_play_leaves_no_partial_file(player, site, tmp_path):
    player.play(site.stream_url(), tmp_path / "clip.mp4")
    assert sorted(path.name for path in tmp_path.iterdir() if path.suffix == ".mp4") == ["clip.mp4"]


def test_play_accepts_video_url(player, site, encoded_clip):
    stats = player.play(f"{site.url}/v1/videos/clip")
    assert stats.frames == encoded_clip.header.frame_count


def test_bundle_downloaded_once_across_players(site, tiny_bundle, tmp_path):
    for _ in range(2):
        with Player(cache_dir=tmp_path / "cache", threads=1) as player:
            player.play(site.stream_url())
    assert site.requests().count(f"GET /{site.path.name}/v1/bundles/{tiny_bundle.sha256}/{DECODER_FILE}") == 1


def test_bundle_fetched_by_stream_sha256(player, site, tiny_bundle):
    player.play(site.stream_url())
    assert manifest_requests(site, tiny_bundle.sha256) == 1
    assert site.requests().count(f"GET /{site.path.name}/v1/decoder") == 0


def test_cached_bundle_needs_no_request(player, site, tiny_bundle):
    player.play(site.stream_url())
    before = manifest_requests(site, tiny_bundle.sha256)
    player.play(site.stream_url())
    assert before == 1
    assert manifest_requests(site, tiny_bundle.sha256) == before


def test_server_option_picks_bundle_source(tmp_path, site, local_server, tiny_bundle):
    other = local_server.root / "bundle-source"
    (other / "bundle").mkdir(parents=True)
    for path in tiny_bundle.path.iterdir():
        (other / "bundle" / path.name).write_bytes(path.read_bytes())
    with Player(server=f"{local_server.url}/bundle-source", cache_dir=tmp_path / "cache", threads=1) as player:
        player.play(site.stream_url())
    assert manifest_requests(site, tiny_bundle.sha256) == 0
    requests = (other / "requests.log").read_text()
    assert requests.count(f"GET /bundle-source/v1/bundles/{tiny_bundle.sha256}\n") == 1


def test_stream_for_other_bundle_raises(player, site, encoded_clip, tmp_path):
    header = replace(encoded_clip.header, bundle_sha256="12" * 32)
    url = site.add_video("other", header.pack() + encoded_clip.data[len(encoded_clip.header.pack()) :])
    with pytest.raises(BundleError, match=r"stream needs decoder bundle 1212121212121212 .* has no decoder bundle"):
        player.play(url, tmp_path / "other.mp4")
    assert not (tmp_path / "other.mp4").exists()


def test_stream_for_other_bundle_names_quality(player, site, encoded_clip):
    header = replace(encoded_clip.header, bundle_sha256="12" * 32, quality=3)
    url = site.add_video("other-quality", header.pack() + encoded_clip.data[len(encoded_clip.header.pack()) :])
    with pytest.raises(BundleError, match=r"\(model tiny-test, quality 3\)"):
        list(player.frames(url))


def test_damaged_packet_over_http(player, site, encoded_clip, tmp_path):
    url = site.add_video("damaged", damage_packet(encoded_clip.data, encoded_clip.header, 1))
    frames = []
    with pytest.raises(StreamError, match="packet 1 is damaged"):
        for frame in player.frames(url):
            frames.append(frame)
    assert_frames_match(frames, encoded_clip.reference[:1])


def test_broken_connection_raises_stream_error(player, site, encoded_clip, tmp_path):
    site.add_video("cut", encoded_clip.data)
    second_packet_end = packet_spans(encoded_clip.data, encoded_clip.header)[1][1]
    (site.path / "videos" / "cut.cut").write_text(str(second_packet_end + 5))
    output = tmp_path / "cut.mp4"
    stats = PlaybackStats()
    with pytest.raises(StreamError, match="stream truncated"):
        for _ in player.frames(site.stream_url("cut"), stats):
            pass
    assert stats.frames == 2
    with pytest.raises(StreamError, match="stream truncated"):
        player.play(site.stream_url("cut"), output)
    assert list(tmp_path.glob("cut*.mp4")) == []


def test_not_encoded_video_names_status_url(player, site):
    (site.path / "videos" / "pending.status").write_text("queued")
    with pytest.raises(ServerError, match=r"HTTP 409 .* check its status at .*/v1/videos/pending$") as caught:
        player.play(site.stream_url("pending"))
    assert caught.value.status_code == 409


def test_first_frame_before_download_ends(player, site, encoded_clip):
    first_packet_end = packet_spans(encoded_clip.data, encoded_clip.header)[0][1]
    last_chunk_start = (len(encoded_clip.data) - 1) // CHUNK * CHUNK
    assert first_packet_end <= last_chunk_start, "the clip is too short to hold back its last chunk"
    site.add_video("held", encoded_clip.data)
    (site.path / "videos" / "held.hold").touch()
    stats = PlaybackStats()
    frames = player.frames(site.stream_url("held"), stats)
    next(frames)
    assert stats.bytes_received <= last_chunk_start
    (site.path / "videos" / "held.release").touch()
    assert len(list(frames)) == encoded_clip.header.frame_count - 1


def test_show_without_display_warns_once(player, site, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with caplog.at_level(logging.WARNING, logger="latentcast_client.playback"):
        player.play(site.stream_url(), tmp_path / "shown.mp4", show=True)
    warnings = [record for record in caplog.records if "frames are not shown" in record.getMessage()]
    assert len(warnings) == 1
    assert (tmp_path / "shown.mp4").is_file()


def test_gui_reason_without_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "no display" in gui_unavailable_reason()


def test_window_without_gui_shows_nothing(monkeypatch, caplog):
    monkeypatch.setenv("DISPLAY", ":99")
    window = FrameWindow()
    reason = gui_unavailable_reason()
    if reason is None:
        pytest.skip("this OpenCV build has GUI support")
    with caplog.at_level(logging.WARNING, logger="latentcast_client.playback"):
        window.show(np.zeros((4, 4, 3), dtype=np.uint8))
        window.show(np.zeros((4, 4, 3), dtype=np.uint8))
    window.close()
    assert [record.getMessage() for record in caplog.records] == [f"frames are not shown: {reason}; playback continues"]


def test_play_function(site, encoded_clip, tmp_path):
    stats = play(site.stream_url(), tmp_path / "clip.mp4", cache_dir=tmp_path / "cache", threads=1)
    assert stats.frames == encoded_clip.header.frame_count


def test_decode_file_writes_mp4(tiny_bundle, encoded_clip, tmp_path):
    source = tmp_path / "clip.lcs"
    source.write_bytes(encoded_clip.data)
    stats = decode_file(source, tiny_bundle.path, tmp_path / "clip.mp4", threads=1)
    assert stats.frames == encoded_clip.header.frame_count
    assert len(list(read_frames(tmp_path / "clip.mp4"))) == encoded_clip.header.frame_count


def test_decode_file_rejects_other_bundle(tiny_bundle, encoded_clip, tmp_path):
    header = replace(encoded_clip.header, bundle_sha256="34" * 32)
    source = tmp_path / "other.lcs"
    source.write_bytes(header.pack() + encoded_clip.data[len(encoded_clip.header.pack()) :])
    with pytest.raises(BundleError, match="stream needs decoder bundle 3434"):
        decode_file(source, tiny_bundle, tmp_path / "other.mp4", threads=1)


def test_decode_file_missing(tiny_bundle, tmp_path):
    with pytest.raises(FileNotFoundError, match="stream file not found"):
        decode_file(tmp_path / "absent.lcs", tiny_bundle)


def test_empty_stream_writes_no_file(tiny_bundle, encoded_clip, tmp_path, caplog):
    header = replace(encoded_clip.header, frame_count=0)
    source = tmp_path / "empty.lcs"
    source.write_bytes(header.pack())
    with caplog.at_level(logging.WARNING, logger="latentcast_client.playback"):
        stats = decode_file(source, tiny_bundle, tmp_path / "empty.mp4", threads=1)
    assert stats.frames == 0
    assert not (tmp_path / "empty.mp4").exists()
    assert "contains no frame" in caplog.text


def test_frames_from_start_time(player, site, encoded_clip):
    # 0.1 s at 30000/1001 frames/s is frame 2.997, so playback starts at frame 2.
    frames = list(player.frames(site.stream_url(), start_seconds=0.1))
    assert_frames_match(frames, encoded_clip.reference[2:])


def test_play_from_start_writes_tail(player, site, encoded_clip, tmp_path):
    output = tmp_path / "tail.mp4"
    stats = player.play(site.stream_url(), output, start=0.1)
    count = encoded_clip.header.frame_count
    assert stats.frames == count - 2
    assert stats.first_frame == 2
    assert len(list(read_frames(output))) == count - 2


def test_play_from_start_uses_ranges(player, site, encoded_clip):
    player.play(f"{site.url}/v1/videos/clip", start=0.1)
    header_bytes = len(encoded_clip.header.pack())
    offset = packet_spans(encoded_clip.data, encoded_clip.header)[2][0]
    stream_path = f"/{site.path.name}/v1/videos/clip/stream"
    assert f"GET /{site.path.name}/v1/videos/clip/index" in site.requests()
    assert f"GET {stream_path} bytes=0-{header_bytes - 1}" in site.requests()
    assert f"GET {stream_path} bytes={offset}-" in site.requests()
    assert f"GET {stream_path}" not in site.requests()


def test_play_start_zero_skips_index(player, site):
    player.play(site.stream_url(), start=0.0)
    assert f"GET /{site.path.name}/v1/videos/clip/index" not in site.requests()


def test_play_start_at_last_frame(player, site, encoded_clip):
    count = encoded_clip.header.frame_count
    last_frame_time = float((count - 1) / encoded_clip.header.fps) + 0.001
    stats = player.play(site.stream_url(), start=last_frame_time)
    assert stats.frames == 1


def test_play_start_past_end_raises(player, site, encoded_clip):
    duration = float(encoded_clip.header.frame_count / encoded_clip.header.fps)
    with pytest.raises(StartTimeError, match=f"which lasts {duration:.3f} s"):
        player.play(site.stream_url(), start=duration)


def test_play_negative_start_raises(player, site):
    with pytest.raises(StartTimeError, match="invalid start time -1.0 s"):
        player.play(site.stream_url(), start=-1.0)


def test_play_start_not_encoded_raises(player, site):
    (site.path / "videos" / "clip.status").write_text("encoding")
    with pytest.raises(ServerError, match="downloading the stream index failed"):
        player.play(site.stream_url(), start=0.1)


def test_start_inside_gop_uses_keyframe(player, site, predicted_clip):
    url = site.add_video("predicted", predicted_clip.data)
    # Frame 6 (0.2 s) is a P-frame; the keyframe before it is frame PREDICTED_KEYINT.
    stats = PlaybackStats()
    frames = list(player.frames(url, start_seconds=0.2, stats=stats))
    assert stats.first_frame == PREDICTED_KEYINT
    assert_frames_match(frames, predicted_clip.reference[PREDICTED_KEYINT:])


def test_predicted_clip_plays_whole(player, site, predicted_clip):
    url = site.add_video("predicted", predicted_clip.data)
    assert_frames_match(list(player.frames(url)), predicted_clip.reference)
