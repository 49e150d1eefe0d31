"""A loaded codec together with its exported bundle: what encoding a stream needs, per quality level."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from latentcast.models.codec import FrameCodec, load_model, model_id
from latentcast.models.export import export_bundle
from latentcast.models.levels import discover_levels, list_levels
from latentcast_client.bundle import Bundle, load_bundle
from latentcast_client.errors import BundleError

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "latentcast"


@dataclass(frozen=True)
class CodecPackage:
    """A model, its verified bundle, and its quality level (0 for weights outside the numbered levels)."""

    model: FrameCodec
    bundle: Bundle
    model_id: str
    quality: int = 0


def prepare_codec(
    weights: Path | None = None,
    cache_dir: Path | None = None,
    *,
    quality: int | None = None,
    weights_dir: Path | None = None,
) -> CodecPackage:
    """Load a model and the bundle exported from it.

    ``weights`` names a .safetensors file outside the levels (its quality is 0).
    Without it, level ``quality`` of ``weights_dir`` is loaded (None: the default
    level; see ``levels.discover_levels``). Raises UnknownQualityError for a level
    that the folder does not contain.
    """
    if weights is not None:
        return _prepare(Path(weights), cache_dir, quality=0)
    level = discover_levels(weights_dir).get(quality)
    return _prepare(level.weights, cache_dir, quality=level.quality)


def prepare_levels(weights_dir: Path | None = None, cache_dir: Path | None = None) -> dict[int, CodecPackage]:
    """Load every level in ``weights_dir`` with its bundle, exporting the bundles that are not cached yet."""
    return {level.quality: _prepare(level.weights, cache_dir, level.quality) for level in list_levels(weights_dir)}


def _prepare(weights: Path, cache_dir: Path | None, quality: int) -> CodecPackage:
    """Load ``weights`` and its bundle, cached under ``cache_dir/bundles/<model id>``.

    The model id includes the weights' hash, so changed weights get a new bundle.
    """
    model = load_model(weights)
    identifier = model_id(weights)
    folder = (cache_dir or default_cache_dir()) / "bundles" / identifier
    try:
        bundle = load_bundle(folder)
        # The encoder codes with tables computed from the weights in memory. A bundle cached by an
        # older version of the export code could carry other tables, and players would then decode
        # garbage, so such a bundle is exported again.
        if bundle.tables() != model.entropy_tables():
            raise BundleError("its entropy tables differ from the model's")
        if bundle.inter_tables() != model.inter:
            raise BundleError("its residual tables differ from the model's")
    except BundleError as exc:
        if folder.exists():
            logger.warning("re-exporting bundle %s: %s", identifier, exc)
        bundle = export_bundle(model, folder, identifier)
    return CodecPackage(model=model, bundle=bundle, model_id=identifier, quality=quality)


def find_level_bundle(
    sha256: str, quality: int = 0, weights_dir: Path | None = None, cache_dir: Path | None = None
) -> CodecPackage:
    """Return the level whose bundle has manifest sha256 ``sha256``, exporting bundles as needed.

    Level ``quality`` (a stream header's hint) is tried first, so a stream of a known
    level exports one bundle at most. Raises BundleError when no level matches.
    """
    levels = list_levels(weights_dir)
    ordered = sorted(levels, key=lambda level: level.quality != quality)
    found = []
    for level in ordered:
        package = _prepare(level.weights, cache_dir, level.quality)
        if package.bundle.sha256 == sha256:
            return package
        found.append(f"{level.quality}: {package.bundle.sha256[:16]}")
    folder = weights_dir if weights_dir is not None else levels[0].weights.parent
    raise BundleError(
        f"the stream needs decoder bundle {sha256[:16]} (quality {quality}), but none of the levels in {folder} "
        f"exports it (level: bundle {'; '.join(found)}); decode it with the bundle folder it was made for "
        "(latentcast decode --bundle)"
    )
