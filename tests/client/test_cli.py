"""The latentcast-client command: play, decode and bundle, exit statuses and messages."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from latentcast_client.cli import format_stats, main
from latentcast_client.player import PlaybackStats
from latentcast_client.video import read_frames

from .streams import damage_packet


def run_command(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "latentcast_client", *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


def test_play_command_writes_mp4(site, encoded_clip, tmp_path):
    output = tmp_path / "clip.mp4"
    result = run_command(
        "play", site.stream_url(), "-o", str(output), "--cache-dir", str(tmp_path / "c"), "--threads", "1"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"decoded {encoded_clip.header.frame_count} frames in ")
    assert f"received {len(encoded_clip.data)} bytes, wrote {output}" in result.stdout
    assert len(list(read_frames(output))) == encoded_clip.header.frame_count


def test_play_command_error_exits_1(site, tmp_path):
    result = run_command("play", site.stream_url("missing"), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 1
    assert "latentcast-client: error: opening the stream failed" in result.stderr
    assert "video not found: missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_play_command_invalid_url_exits_2(tmp_path):
    result = run_command("play", "http://127.0.0.1:1/videos/x", "-o", str(tmp_path / "x.mp4"))
    assert result.returncode == 2
    assert "is not /v1/videos/<id>" in result.stderr


def test_play_video_url(site, encoded_clip, tmp_path, capsys):
    status = main(["play", f"{site.url}/v1/videos/clip", "--cache-dir", str(tmp_path / "c"), "--threads", "1"])
    assert status == 0
    assert capsys.readouterr().out.startswith(f"decoded {encoded_clip.header.frame_count} frames")


def test_play_uses_cache_dir(site, tiny_bundle, tmp_path):
    main(["play", site.stream_url(), "--cache-dir", str(tmp_path / "c"), "--threads", "1"])
    assert (tmp_path / "c" / "bundles" / tiny_bundle.sha256 / "manifest.json").is_file()


def test_play_server_option(site, local_server, tiny_bundle, tmp_path):
    source = local_server.root / "cli-bundle-source"
    (source / "bundle").mkdir(parents=True)
    for path in tiny_bundle.path.iterdir():
        (source / "bundle" / path.name).write_bytes(path.read_bytes())
    server = f"{local_server.url}/cli-bundle-source"
    status = main(["play", site.stream_url(), "--server", server, "--cache-dir", str(tmp_path / "c")])
    assert status == 0
    assert (source / "requests.log").is_file()


def test_play_damaged_stream_exits_1(site, encoded_clip, tmp_path, capsys):
    url = site.add_video("damaged", damage_packet(encoded_clip.data, encoded_clip.header, 2))
    status = main(["play", url, "-o", str(tmp_path / "d.mp4"), "--cache-dir", str(tmp_path / "c"), "--threads", "1"])
    assert status == 1
    assert "packet 2 is damaged" in capsys.readouterr().err
    assert not (tmp_path / "d.mp4").exists()


def test_play_other_bundle_exits_1(site, encoded_clip, tmp_path, capsys):
    header = replace(encoded_clip.header, bundle_sha256="56" * 32)
    url = site.add_video("other", header.pack() + encoded_clip.data[len(encoded_clip.header.pack()) :])
    status = main(["play", url, "--cache-dir", str(tmp_path / "c")])
    assert status == 1
    assert "stream needs decoder bundle 5656" in capsys.readouterr().err


def test_play_not_encoded_exits_1(site, tmp_path, capsys):
    (site.path / "videos" / "pending.status").write_text("encoding")
    status = main(["play", site.stream_url("pending"), "--cache-dir", str(tmp_path / "c")])
    assert status == 1
    assert "HTTP 409" in capsys.readouterr().err


def test_play_show_without_gui_continues(site, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    output = tmp_path / "s.mp4"
    status = main(["play", site.stream_url(), "--show", "-o", str(output), "--cache-dir", str(tmp_path / "c")])
    assert status == 0
    assert caplog.text.count("frames are not shown") == 1
    assert output.is_file()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["play"],
        ["play", "ftp://127.0.0.1/v1/videos/a"],
        ["play", "http://127.0.0.1:1/v1/videos/a", "--threads", "-1"],
        ["play", "http://127.0.0.1:1/v1/videos/a", "--server", "nohost"],
        ["decode", "x.lcs"],
        ["bundle", "localhost:8000"],
    ],
    ids=["no-command", "no-url", "scheme", "threads", "server", "no-bundle", "bundle-url"],
)
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2


def test_decode_command(tiny_bundle, encoded_clip, tmp_path, capsys):
    source = tmp_path / "clip.lcs"
    source.write_bytes(encoded_clip.data)
    output = tmp_path / "clip.mp4"
    status = main(["decode", str(source), "--bundle", str(tiny_bundle.path), "-o", str(output), "--threads", "1"])
    assert status == 0
    assert f"wrote {output}" in capsys.readouterr().out
    assert len(list(read_frames(output))) == encoded_clip.header.frame_count


def test_decode_command_without_bundle_exits_1(encoded_clip, tmp_path, capsys):
    source = tmp_path / "clip.lcs"
    source.write_bytes(encoded_clip.data)
    status = main(["decode", str(source), "--bundle", str(tmp_path)])
    assert status == 1
    assert "not a decoder bundle" in capsys.readouterr().err


def test_decode_command_missing_file_exits_1(tiny_bundle, tmp_path, capsys):
    status = main(["decode", str(tmp_path / "absent.lcs"), "--bundle", str(tiny_bundle.path)])
    assert status == 1
    assert "stream file not found" in capsys.readouterr().err


def test_bundle_command_prints_folder(site, tiny_bundle, tmp_path, capsys):
    status = main(["bundle", site.url, "--cache-dir", str(tmp_path / "c")])
    assert status == 0
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "c" / "bundles" / tiny_bundle.sha256


def test_format_stats_without_output():
    stats = PlaybackStats(frames=10, bytes_received=2048, seconds=2.0)
    assert format_stats(stats, None) == "decoded 10 frames in 2.00 s (5.0 frames/s), received 2048 bytes"


def test_play_start_decodes_tail(site, encoded_clip, tmp_path):
    output = tmp_path / "tail.mp4"
    result = run_command(
        "play", site.stream_url(), "-o", str(output), "--start", "0.1",
        "--cache-dir", str(tmp_path / "c"), "--threads", "1",
    )
    # 0.1 s at 30000/1001 frames/s falls in frame 2, so frames 2 to N - 1 are decoded.
    expected = encoded_clip.header.frame_count - 2
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"decoded {expected} frames in ")
    assert len(list(read_frames(output))) == expected


def test_play_start_past_end_exits_1(site, encoded_clip, tmp_path, capsys):
    status = main(["play", site.stream_url(), "--start", "100", "--cache-dir", str(tmp_path / "c")])
    assert status == 1
    assert "start time 100.0 s is past the end of the video" in capsys.readouterr().err


def test_play_negative_start_exits_2(tmp_path):
    result = run_command("play", "http://127.0.0.1:1/v1/videos/x", "--start", "-1")
    assert result.returncode == 2
    assert "invalid start time -1" in result.stderr
