"""``latentcast encode`` and ``latentcast decode`` on a real clip, in process."""

import re

import pytest

from latentcast.server.cli import main
from latentcast_client.stream import PacketType, StreamReader
from latentcast_client.video import VideoWriter, read_frames


@pytest.fixture(scope="module")
def stream_file(clip_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "carphone.lcs"
    assert main(["encode", str(clip_dir / "carphone.mp4"), "-o", str(out)]) == 0
    return out


def test_encode_command_writes_stream(stream_file):
    assert stream_file.stat().st_size > 0


def test_decode_command_reports_frames_and_psnr(stream_file, clip_dir, tmp_path, capsys):
    out = tmp_path / "carphone.mp4"
    capsys.readouterr()
    assert main(["decode", str(stream_file), "-o", str(out), "--reference", str(clip_dir / "carphone.mp4")]) == 0
    report = capsys.readouterr().out
    assert "120 frames 176x144" in report
    assert re.search(r"PSNR \d+\.\d+ dB", report)
    assert out.stat().st_size > 0


def test_export_command_writes_bundle(tmp_path, capsys):
    assert main(["export", "-o", str(tmp_path / "bundle")]) == 0
    assert (tmp_path / "bundle" / "manifest.json").is_file()


@pytest.fixture(scope="module")
def short_clip(clip_dir, tmp_path_factory):
    """The first 6 frames of carphone.mp4 as an mp4 of their own."""
    path = tmp_path_factory.mktemp("short") / "carphone-6.mp4"
    with VideoWriter(path, 176, 144, 30.0) as writer:
        for frame in read_frames(clip_dir / "carphone.mp4", limit=6):
            writer.write(frame)
    return path


@pytest.fixture()
def bundle_cache(tmp_path_factory, monkeypatch):
    """Keep the bundles these commands export out of the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
    monkeypatch.delenv("LATENTCAST_DEFAULT_QUALITY", raising=False)


@pytest.fixture()
def level_streams(short_clip, tiny_levels_dir, bundle_cache, tmp_path, capsys):
    streams = {}
    for quality in (1, 2):
        out = tmp_path / f"q{quality}.lcs"
        # Keyframes only: level 2 alone has P-frames, which would hide its larger latents.
        status = main(["encode", str(short_clip), "-o", str(out), "--quality", str(quality),
                       "--weights-dir", str(tiny_levels_dir), "--no-psnr", "--keyint", "1"])
        assert status == 0
        streams[quality] = out
    capsys.readouterr()
    return streams


def read_header(path):
    reader = StreamReader()
    reader.feed(path.read_bytes())
    return reader.header


def test_encode_levels_differ_in_size(level_streams):
    assert level_streams[1].stat().st_size < level_streams[2].stat().st_size


def test_encode_keyint_one_writes_keyframes_only(level_streams):
    packets = StreamReader().feed(level_streams[2].read_bytes())
    assert {packet.type for packet in packets} == {PacketType.INTRA}


def test_encode_writes_p_frames_by_default(short_clip, tiny_levels_dir, bundle_cache, tmp_path):
    out = tmp_path / "p.lcs"
    main(["encode", str(short_clip), "-o", str(out), "--quality", "2", "--weights-dir", str(tiny_levels_dir), "--no-psnr"])
    assert PacketType.PREDICTED in {packet.type for packet in StreamReader().feed(out.read_bytes())}


def test_encode_rejects_keyint_zero(short_clip, tiny_levels_dir, bundle_cache, tmp_path, capsys):
    status = main(["encode", str(short_clip), "-o", str(tmp_path / "x.lcs"), "--keyint", "0",
                   "--weights-dir", str(tiny_levels_dir)])
    assert status == 2
    assert "invalid keyframe interval 0" in capsys.readouterr().err


def test_encode_level_recorded_in_header(level_streams):
    assert read_header(level_streams[1]).quality == 1
    assert read_header(level_streams[2]).quality == 2


def test_encode_default_level(short_clip, tiny_levels_dir, bundle_cache, tmp_path):
    out = tmp_path / "default.lcs"
    assert main(["encode", str(short_clip), "-o", str(out), "--weights-dir", str(tiny_levels_dir), "--no-psnr"]) == 0
    assert read_header(out).quality == 1


def test_encode_weights_dir_from_environment(short_clip, tiny_levels_dir, bundle_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTCAST_WEIGHTS_DIR", str(tiny_levels_dir))
    out = tmp_path / "env.lcs"
    assert main(["encode", str(short_clip), "-o", str(out), "--quality", "2", "--no-psnr"]) == 0
    assert read_header(out).model_id.startswith("quality-2-")


def test_encode_model_option_records_quality_zero(short_clip, tiny_levels_dir, bundle_cache, tmp_path):
    out = tmp_path / "model.lcs"
    weights = tiny_levels_dir / "quality-2.safetensors"
    assert main(["encode", str(short_clip), "-o", str(out), "--model", str(weights), "--quality", "1",
                 "--no-psnr"]) == 0
    assert read_header(out).quality == 0
    assert read_header(out).model_id.startswith("quality-2-")


def test_encode_unknown_quality_exits_2(short_clip, tiny_levels_dir, bundle_cache, tmp_path, capsys):
    out = tmp_path / "q9.lcs"
    status = main(["encode", str(short_clip), "-o", str(out), "--quality", "9", "--weights-dir", str(tiny_levels_dir)])
    assert status == 2
    assert "unknown quality level 9; the valid levels are 1, 2" in capsys.readouterr().err
    assert not out.exists()


def test_decode_picks_level_bundle(level_streams, tiny_levels_dir, tmp_path, capsys):
    out = tmp_path / "q2.mp4"
    assert main(["decode", str(level_streams[2]), "-o", str(out), "--weights-dir", str(tiny_levels_dir)]) == 0
    assert "6 frames 176x144, quality 2" in capsys.readouterr().out
    assert len(list(read_frames(out))) == 6


def test_decode_unknown_bundle_exits_1(level_streams, tiny_level_writer, tmp_path, capsys):
    other_levels = tmp_path / "other-levels"
    tiny_level_writer(other_levels, 1, seed=5, latent_scale=1.0, prior_sharpening=1.0)
    status = main(["decode", str(level_streams[2]), "-o", str(tmp_path / "x.mp4"), "--weights-dir", str(other_levels)])
    assert status == 1
    assert "none of the levels in" in capsys.readouterr().err


def test_encode_rejects_non_video_without_traceback(tmp_path, capsys):
    source = tmp_path / "notes.mp4"
    source.write_text("not a video")
    output = tmp_path / "notes.lcs"
    assert main(["encode", str(source), "-o", str(output)]) == 1
    assert "could not be opened as a video" in capsys.readouterr().err
    assert not output.exists()


def test_decode_damaged_stream_leaves_no_output(stream_file, tmp_path, capsys):
    damaged = tmp_path / "damaged.lcs"
    data = bytearray(stream_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    output = tmp_path / "damaged.mp4"
    assert main(["decode", str(damaged), "-o", str(output)]) == 1
    assert "CRC-32 does not match" in capsys.readouterr().err
    assert not output.exists()
    assert list(tmp_path.glob("*.partial*")) == []
