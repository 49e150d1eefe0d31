"""The package's public surface: ``__all__`` and what it names."""

from __future__ import annotations

import inspect

import latentcast_client

EXPECTED = {
    "Bundle", "BundleCache", "BundleError", "FrameDecoder", "LatentcastError", "PlaybackStats", "Player",
    "ServerError", "StartTimeError", "StreamError", "StreamHeader", "StreamReader", "StreamWriter", "VideoError", "VideoWriter",
    "__version__", "decode_chunks", "decode_file", "default_cache_dir", "fetch_bundle", "load_bundle",
    "parse_video_url", "play",
}


def test_all_lists_public_names():
    assert set(latentcast_client.__all__) == EXPECTED


def test_all_has_no_duplicates():
    assert len(latentcast_client.__all__) == len(set(latentcast_client.__all__))


def test_every_name_resolves():
    missing = [name for name in latentcast_client.__all__ if not hasattr(latentcast_client, name)]
    assert missing == []


def test_public_objects_come_from_the_package():
    foreign = [
        name for name in latentcast_client.__all__
        if name != "__version__" and not getattr(latentcast_client, name).__module__.startswith("latentcast_client.")
    ]
    assert foreign == []


def test_public_objects_have_docstrings():
    undocumented = [
        name for name in latentcast_client.__all__
        if name != "__version__" and not inspect.getdoc(getattr(latentcast_client, name))
    ]
    assert undocumented == []


def test_errors_share_base_class():
    for error in (latentcast_client.StreamError, latentcast_client.BundleError, latentcast_client.ServerError):
        assert issubclass(error, latentcast_client.LatentcastError)


def test_version_is_installed_version():
    assert latentcast_client.__version__ == "0.2.0"
