"""A loaded codec together with its exported bundle: what encoding a stream needs."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from latentcast.models.codec import FrameCodec, load_model, model_id
from latentcast.models.export import export_bundle
from latentcast_client.bundle import Bundle, load_bundle
from latentcast_client.errors import BundleError

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "latentcast"


@dataclass(frozen=True)
class CodecPackage:
    model: FrameCodec
    bundle: Bundle
    model_id: str


def prepare_codec(weights: Path | None = None, cache_dir: Path | None = None) -> CodecPackage:
    """Load weights (the bundled default when None) and the bundle exported from them.

    Bundles are cached under ``cache_dir/bundles/<model id>``; the model id includes
    the weights' hash, so changed weights get a new bundle.
    """
    model = load_model(weights)
    identifier = model_id(weights)
    folder = (cache_dir or default_cache_dir()) / "bundles" / identifier
    try:
        bundle = load_bundle(folder)
    except BundleError as exc:
        if folder.exists():
            logger.warning("re-exporting bundle %s: %s", identifier, exc)
        bundle = export_bundle(model, folder, identifier)
    return CodecPackage(model=model, bundle=bundle, model_id=identifier)
