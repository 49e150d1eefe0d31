"""CodecRegistry: packages by quality level and by bundle sha256."""

from __future__ import annotations

from pathlib import Path

import pytest

from latentcast.models.levels import UnknownQualityError
from latentcast.server.codecs import CodecRegistry, load_registry


@pytest.fixture(scope="module")
def registry(tiny_levels_dir: Path, bundle_cache_dir: Path) -> CodecRegistry:
    return load_registry(tiny_levels_dir, bundle_cache_dir, default_quality=None)


def test_registry_default_is_lower_middle(registry: CodecRegistry) -> None:
    assert registry.default_quality == 1
    assert registry.default.quality == 1


def test_registry_get_none_returns_default(registry: CodecRegistry) -> None:
    assert registry.get(None) is registry.default


def test_registry_get_level(registry: CodecRegistry) -> None:
    assert registry.get(2).model_id.startswith("quality-2-")


def test_registry_get_unknown_level(registry: CodecRegistry) -> None:
    with pytest.raises(UnknownQualityError, match="unknown quality level 3; the valid levels are 1, 2"):
        registry.get(3)


def test_registry_by_sha256(registry: CodecRegistry) -> None:
    assert registry.by_sha256(registry.get(2).bundle.sha256) is registry.get(2)


def test_registry_by_unknown_sha256(registry: CodecRegistry) -> None:
    assert registry.by_sha256("0" * 64) is None


def test_registry_keeps_measured_numbers(registry: CodecRegistry) -> None:
    assert registry.levels[2].bpp == 0.5
    assert registry.levels[1].bpp is None


def test_load_registry_given_default(tiny_levels_dir: Path, bundle_cache_dir: Path) -> None:
    assert load_registry(tiny_levels_dir, bundle_cache_dir, default_quality=2).default_quality == 2


def test_registry_rejects_default_outside_levels(registry: CodecRegistry) -> None:
    with pytest.raises(UnknownQualityError, match=r"unknown quality level 4 \(from the default level\)"):
        CodecRegistry(registry.packages, default_quality=4)
