"""BundleCache: where bundles are kept, verification on load, atomic installation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from latentcast_client.bundle import DECODER_FILE, MANIFEST
from latentcast_client.cache import CACHE_ENV, BundleCache, default_cache_dir
from latentcast_client.errors import BundleError


def test_default_dir_from_override(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_default_dir_from_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "latentcast-client"


def test_default_dir_ignores_relative_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "latentcast-client"


def test_default_dir_under_home(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "latentcast-client"


def test_cache_uses_default_dir(isolated_cache):
    assert BundleCache().bundles_dir == isolated_cache / "bundles"


def test_path_is_named_by_sha(tmp_path):
    assert BundleCache(tmp_path).path("a" * 64) == tmp_path / "bundles" / ("a" * 64)


@pytest.mark.parametrize("bundle_id", ["../" + "a" * 61, "A" * 64, "a" * 63, ""])
def test_path_rejects_invalid_id(tmp_path, bundle_id):
    with pytest.raises(BundleError, match="is not a lowercase hex sha256"):
        BundleCache(tmp_path).path(bundle_id)


def test_load_absent_returns_none(tmp_path):
    assert BundleCache(tmp_path).load("a" * 64) is None


def install_copy(cache: BundleCache, bundle) -> Path:
    with cache.staging() as staging:
        for path in bundle.path.iterdir():
            shutil.copy(path, staging / path.name)
        return cache.install(staging, bundle.sha256).path


def test_install_then_load(tmp_path, tiny_bundle):
    cache = BundleCache(tmp_path)
    installed = install_copy(cache, tiny_bundle)
    assert installed == cache.path(tiny_bundle.sha256)
    assert cache.load(tiny_bundle.sha256).manifest == tiny_bundle.manifest


def test_staging_removed_after_install(tmp_path, tiny_bundle):
    cache = BundleCache(tmp_path)
    install_copy(cache, tiny_bundle)
    assert [path.name for path in cache.bundles_dir.iterdir()] == [tiny_bundle.sha256]


def test_staging_removed_on_error(tmp_path):
    cache = BundleCache(tmp_path)
    with pytest.raises(RuntimeError), cache.staging() as staging:
        (staging / "partial").write_bytes(b"x")
        raise RuntimeError("download failed")
    assert list(cache.bundles_dir.iterdir()) == []


def test_install_rejects_altered_file(tmp_path, tiny_bundle):
    cache = BundleCache(tmp_path)
    with cache.staging() as staging:
        for path in tiny_bundle.path.iterdir():
            shutil.copy(path, staging / path.name)
        (staging / DECODER_FILE).write_bytes(b"altered")
        with pytest.raises(BundleError, match="bundle file decoder.onnx has sha256"):
            cache.install(staging, tiny_bundle.sha256)
    assert not cache.path(tiny_bundle.sha256).exists()


def test_install_rejects_wrong_sha(tmp_path, tiny_bundle):
    cache = BundleCache(tmp_path)
    with cache.staging() as staging:
        shutil.copytree(tiny_bundle.path, staging, dirs_exist_ok=True)
        with pytest.raises(BundleError, match="wrong or altered bundle"):
            cache.install(staging, "b" * 64)


def test_install_keeps_existing_copy(tmp_path, tiny_bundle):
    cache = BundleCache(tmp_path)
    first = install_copy(cache, tiny_bundle)
    second = install_copy(cache, tiny_bundle)
    assert second == first


def test_load_removes_altered_bundle(tmp_path, tiny_bundle):
    cache = BundleCache(tmp_path)
    folder = install_copy(cache, tiny_bundle)
    (folder / DECODER_FILE).write_bytes(b"altered")
    assert cache.load(tiny_bundle.sha256) is None
    assert not folder.exists()


def test_load_removes_bundle_with_other_manifest(tmp_path, tiny_bundle):
    cache = BundleCache(tmp_path)
    folder = install_copy(cache, tiny_bundle)
    with (folder / MANIFEST).open("a") as manifest:
        manifest.write("\n")
    assert cache.load(tiny_bundle.sha256) is None
    assert not folder.exists()
