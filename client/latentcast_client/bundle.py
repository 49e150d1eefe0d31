"""The decoder bundle: what a player downloads once to decode every stream of a model.

A bundle is a folder of these files::

    manifest.json   format versions, model id, latent layout, and the sha256 of each file below
    decoder.onnx    synthesis transform: float32 latent (1, C, h, w) -> RGB (1, 3, 16h, 16w) in [0, 1]
    entropy.json    integer frequency tables of the latent (see ``entropy.EntropyTables``)
    inter.json      optional: residual tables of predicted frames (see ``inter.InterTables``);
                    a bundle without it decodes streams of keyframes only

The bundle's identity is the sha256 of manifest.json's bytes; each stream header
carries it, so a player can tell a stream needs a different bundle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from latentcast_client.entropy import EntropyTables
from latentcast_client.errors import BundleError
from latentcast_client.inter import InterTables

BUNDLE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DECODER_FILE = "decoder.onnx"
TABLES_FILE = "entropy.json"
INTER_FILE = "inter.json"
BUNDLE_FILES = (DECODER_FILE, TABLES_FILE)
OPTIONAL_FILES = (INTER_FILE,)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    model_id: str
    latent_channels: int
    stride: int
    stream_format_version: int
    files: dict[str, str]
    format_version: int = BUNDLE_FORMAT_VERSION

    def listed_files(self) -> tuple[str, ...]:
        """Return the bundle files this manifest covers: the required ones, then the optional ones it lists."""
        return BUNDLE_FILES + tuple(name for name in OPTIONAL_FILES if name in self.files)

    def to_bytes(self) -> bytes:
        data = {
            "format_version": self.format_version,
            "stream_format_version": self.stream_format_version,
            "model_id": self.model_id,
            "latent_channels": self.latent_channels,
            "stride": self.stride,
            "files": dict(sorted(self.files.items())),
        }
        return (json.dumps(data, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> "Manifest":
        try:
            raw = json.loads(data)
            manifest = cls(
                model_id=str(raw["model_id"]),
                latent_channels=int(raw["latent_channels"]),
                stride=int(raw["stride"]),
                stream_format_version=int(raw["stream_format_version"]),
                files={str(k): str(v) for k, v in raw["files"].items()},
                format_version=int(raw["format_version"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"bundle manifest is not valid: {exc!r}") from exc
        if manifest.format_version != BUNDLE_FORMAT_VERSION:
            raise BundleError(
                f"bundle format version {manifest.format_version} is not supported; "
                f"this player reads version {BUNDLE_FORMAT_VERSION}. Upgrade latentcast-client."
            )
        missing = [name for name in BUNDLE_FILES if name not in manifest.files]
        if missing:
            raise BundleError(f"bundle manifest lists no hash for {', '.join(missing)}")
        return manifest


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    path: Path
    manifest: Manifest
    sha256: str

    @property
    def decoder_path(self) -> Path:
        return self.path / DECODER_FILE

    def tables(self) -> EntropyTables:
        tables = EntropyTables.from_json((self.path / TABLES_FILE).read_text())
        self._check_channels(tables.channels, "entropy tables")
        return tables

    def inter_tables(self) -> InterTables | None:
        """Load the residual tables of predicted frames, or return None for a keyframe-only bundle."""
        if INTER_FILE not in self.manifest.files:
            return None
        tables = InterTables.from_json((self.path / INTER_FILE).read_text())
        self._check_channels(tables.channels, "residual tables")
        return tables

    def _check_channels(self, channels: int, kind: str) -> None:
        if channels != self.manifest.latent_channels:
            raise BundleError(
                f"{kind} have {channels} channels but the manifest declares {self.manifest.latent_channels}"
            )


def _listed_files(folder: Path) -> tuple[str, ...]:
    return BUNDLE_FILES + tuple(name for name in OPTIONAL_FILES if (folder / name).is_file())


def write_manifest(folder: Path, model_id: str, latent_channels: int, stride: int, stream_format_version: int) -> str:
    """Hash the bundle files in ``folder``, write manifest.json, return the bundle's sha256."""
    files = {}
    for name in _listed_files(folder):
        path = folder / name
        if not path.is_file():
            raise BundleError(f"cannot write a manifest: {path} is missing")
        files[name] = sha256_hex(path.read_bytes())
    manifest = Manifest(model_id, latent_channels, stride, stream_format_version, files)
    data = manifest.to_bytes()
    (folder / MANIFEST).write_bytes(data)
    return sha256_hex(data)


def load_bundle(folder: Path | str, expected_sha256: str | None = None) -> Bundle:
    """Read a bundle folder and check the manifest's hash and every file's hash.

    Raises BundleError naming the file that is missing or altered.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"no {MANIFEST} in {folder}: not a decoder bundle")
    data = manifest_path.read_bytes()
    digest = sha256_hex(data)
    if expected_sha256 is not None and digest != expected_sha256:
        raise BundleError(f"bundle manifest sha256 is {digest}, expected {expected_sha256}: wrong or altered bundle")
    manifest = Manifest.from_bytes(data)
    for name in manifest.listed_files():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"bundle file {name} is missing from {folder}")
        actual = sha256_hex(path.read_bytes())
        if actual != manifest.files[name]:
            raise BundleError(f"bundle file {name} has sha256 {actual}, but the manifest lists {manifest.files[name]}")
    return Bundle(path=folder, manifest=manifest, sha256=digest)
