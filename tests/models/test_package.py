"""Models with their exported bundles: one level, every level, and the level behind a bundle sha256."""

from __future__ import annotations

import pytest

from latentcast.models.levels import DEFAULT_QUALITY_ENV, UnknownQualityError
from latentcast.models.package import find_level_bundle, prepare_codec, prepare_levels
from latentcast_client.bundle import write_manifest
from latentcast_client.errors import BundleError


@pytest.fixture(autouse=True)
def no_default_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEFAULT_QUALITY_ENV, raising=False)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("package-cache")


@pytest.fixture(scope="module")
def packages(tiny_levels_dir, cache_dir):
    return prepare_levels(tiny_levels_dir, cache_dir)


def test_prepare_levels_one_package_per_level(packages):
    assert sorted(packages) == [1, 2]
    assert [packages[number].quality for number in (1, 2)] == [1, 2]


def test_prepare_levels_bundles_differ(packages):
    assert packages[1].bundle.sha256 != packages[2].bundle.sha256


def test_prepare_levels_model_ids_name_levels(packages):
    assert packages[1].model_id.startswith("quality-1-")
    assert packages[2].model_id.startswith("quality-2-")


def test_prepare_levels_reuses_cached_bundles(packages, tiny_levels_dir, cache_dir):
    again = prepare_levels(tiny_levels_dir, cache_dir)
    assert again[2].bundle.path == packages[2].bundle.path
    assert again[2].bundle.sha256 == packages[2].bundle.sha256


def test_prepare_codec_default_level(packages, tiny_levels_dir, cache_dir):
    package = prepare_codec(cache_dir=cache_dir, weights_dir=tiny_levels_dir)
    assert package.quality == 1
    assert package.bundle.sha256 == packages[1].bundle.sha256


def test_prepare_codec_given_level(packages, tiny_levels_dir, cache_dir):
    package = prepare_codec(cache_dir=cache_dir, quality=2, weights_dir=tiny_levels_dir)
    assert package.bundle.sha256 == packages[2].bundle.sha256


def test_prepare_codec_unknown_level(tiny_levels_dir, cache_dir):
    with pytest.raises(UnknownQualityError, match="unknown quality level 7; the valid levels are 1, 2"):
        prepare_codec(cache_dir=cache_dir, quality=7, weights_dir=tiny_levels_dir)


def test_prepare_codec_weights_file_has_quality_zero(packages, tiny_levels_dir, cache_dir):
    package = prepare_codec(tiny_levels_dir / "quality-2.safetensors", cache_dir)
    assert package.quality == 0
    assert package.bundle.sha256 == packages[2].bundle.sha256


@pytest.mark.parametrize("hint", [2, 1, 0])
def test_find_level_bundle_by_sha(packages, tiny_levels_dir, cache_dir, hint):
    found = find_level_bundle(packages[2].bundle.sha256, hint, tiny_levels_dir, cache_dir)
    assert found.quality == 2


def test_find_level_bundle_unknown_sha(packages, tiny_levels_dir, cache_dir):
    with pytest.raises(BundleError, match="needs decoder bundle 0000000000000000 .* none of the levels in"):
        find_level_bundle("0" * 64, 1, tiny_levels_dir, cache_dir)


def test_prepare_codec_reexports_bundle_with_stale_tables(tiny_levels_dir, tmp_path):
    first = prepare_codec(quality=1, weights_dir=tiny_levels_dir, cache_dir=tmp_path)
    tables_path = first.bundle.path / "entropy.json"
    stale = first.model.entropy_tables()
    stale.offsets[0] -= 1
    tables_path.write_text(stale.to_json())
    # Rewrite the manifest so the stale bundle still verifies by its hashes.
    write_manifest(first.bundle.path, first.model_id, stale.channels, 16, 1)
    again = prepare_codec(quality=1, weights_dir=tiny_levels_dir, cache_dir=tmp_path)
    assert again.bundle.tables() == again.model.entropy_tables()
