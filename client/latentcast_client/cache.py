"""On-disk cache of decoder bundles, one folder per bundle sha256.

Layout::

    <cache root>/bundles/<sha256>/   manifest.json, decoder.onnx, entropy.json

The root is ``$LATENTCAST_CLIENT_CACHE`` if set, else ``$XDG_CACHE_HOME/latentcast-client``,
else ``~/.cache/latentcast-client``. A bundle is written into a temporary folder next to its
final place and renamed into place only after every file has been verified, so another
process never finds a half-written bundle. Cached bundles are verified again on each load,
and one that fails verification is removed, so the caller downloads it again.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from latentcast_client.bundle import Bundle, load_bundle
from latentcast_client.errors import BundleError

logger = logging.getLogger(__name__)

CACHE_ENV = "LATENTCAST_CLIENT_CACHE"
_APP_NAME = "latentcast-client"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_STAGING_PREFIX = ".download-"


def default_cache_dir() -> Path:
    """Return the cache root used when none is given (see the module docstring)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG base directory spec says to ignore relative paths in XDG_CACHE_HOME.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / _APP_NAME
    return Path.home() / ".cache" / _APP_NAME


class BundleCache:
    """Verified decoder bundles stored under ``root/bundles/<sha256>``."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.bundles_dir = self.root / "bundles"

    def path(self, sha256: str) -> Path:
        """Return the folder of the bundle with this manifest sha256 (which may not exist yet)."""
        # The hash comes from a server or a stream header: checking it keeps it from naming another path.
        if not _SHA256_HEX.fullmatch(sha256):
            raise BundleError(f"bundle id {sha256!r} is not a lowercase hex sha256 of 64 digits")
        return self.bundles_dir / sha256

    def load(self, sha256: str) -> Bundle | None:
        """Return the cached bundle with this sha256 after verifying it, or None if it is absent.

        A cached bundle that fails verification is removed and None is returned.
        """
        folder = self.path(sha256)
        if not folder.is_dir():
            return None
        try:
            return load_bundle(folder, expected_sha256=sha256)
        except BundleError as exc:
            logger.warning("removing cached bundle %s, which failed verification: %s", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            return None

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """Yield an empty temporary folder inside the cache, removed on exit unless installed."""
        self.bundles_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=self.bundles_dir))
        # NOTE: a process killed during a download leaves its .download-* folder behind.
        try:
            yield folder
        finally:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)

    def install(self, staging: Path, sha256: str) -> Bundle:
        """Verify the bundle in ``staging`` and rename it to its place in the cache.

        Raises BundleError naming the file that is missing or altered. If another process
        installed the same bundle first, its verified copy is returned instead.
        """
        bundle = load_bundle(staging, expected_sha256=sha256)
        target = self.path(sha256)
        for _ in range(2):
            try:
                staging.rename(target)
            except OSError:
                existing = self.load(sha256)
                if existing is not None:
                    return existing
                # load() removed a damaged copy, so the second rename can succeed.
                continue
            logger.info("cached decoder bundle %s (%s) in %s", sha256[:16], bundle.manifest.model_id, target)
            return replace(bundle, path=target)
        raise BundleError(f"cannot move the downloaded bundle into {target}; check that the cache folder is writable")
