"""The codecs a server encodes with: one loaded model and bundle per quality level."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from latentcast.models.levels import QualityLevel, UnknownQualityError, discover_levels
from latentcast.models.package import CodecPackage, prepare_levels


@dataclass(frozen=True)
class CodecRegistry:
    """Packages by quality level, the default level, and each level's measured numbers when known."""

    packages: dict[int, CodecPackage]
    default_quality: int
    levels: dict[int, QualityLevel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.default_quality not in self.packages:
            raise UnknownQualityError(self.default_quality, self.qualities, source="the default level")

    @property
    def qualities(self) -> list[int]:
        return sorted(self.packages)

    @property
    def default(self) -> CodecPackage:
        return self.packages[self.default_quality]

    def get(self, quality: int | None = None) -> CodecPackage:
        """Return the package of ``quality`` (the default for None); raise UnknownQualityError if absent."""
        wanted = self.default_quality if quality is None else quality
        package = self.packages.get(wanted)
        if package is None:
            raise UnknownQualityError(wanted, self.qualities)
        return package

    def by_sha256(self, sha256: str) -> CodecPackage | None:
        """Return the package whose bundle manifest has this sha256, or None."""
        for quality in self.qualities:
            if self.packages[quality].bundle.sha256 == sha256:
                return self.packages[quality]
        return None


def load_registry(weights_dir: Path | None, cache_dir: Path | None, default_quality: int | None) -> CodecRegistry:
    """Load every level in ``weights_dir`` with its bundle (see ``prepare_levels``)."""
    found = discover_levels(weights_dir, default_quality)
    packages = prepare_levels(weights_dir, cache_dir)
    return CodecRegistry(
        packages=packages, default_quality=found.default, levels={level.quality: level for level in found.levels}
    )
