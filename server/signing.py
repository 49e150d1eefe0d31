"""Signed links: query parameters that let anyone holding them read one video until they expire.

A link to ``/v1/videos/{id}`` (or its ``/stream`` or ``/index``) carries ``expires``, the Unix
time in whole seconds after which it stops working, and ``signature``, the hex HMAC-SHA256 of
``latentcast-link-v1``, the video id and ``expires`` under the server's signing secret. Changing
any of them breaks the signature. The secret is LATENTCAST_SIGNING_SECRET, else a random value
generated once into ``data_dir/signing-secret`` with mode 0600, so every API process that
shares the data folder checks links the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

from latentcast.server.settings import MIN_SIGNING_SECRET_CHARS, Settings

logger = logging.getLogger(__name__)

EXPIRES_PARAM = "expires"
SIGNATURE_PARAM = "signature"
MIN_LINK_SECONDS = 1
MAX_LINK_SECONDS = 7 * 24 * 3600
SECRET_FILE_NAME = "signing-secret"
_MESSAGE_PREFIX = b"latentcast-link-v1"
_SECRET_RANDOM_BYTES = 32


class InvalidLink(Exception):
    """A signed link is malformed, altered or expired; the message names the problem and the fix."""


def sign_link(secret: bytes, video_id: str, expires: int) -> str:
    """Return the hex HMAC-SHA256 signature of a link to ``video_id`` that expires at Unix time ``expires``."""
    message = b"\n".join((_MESSAGE_PREFIX, video_id.encode("utf-8"), str(expires).encode("ascii")))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def link_query(secret: bytes, video_id: str, expires: int) -> str:
    """Return the query string (without '?') that signs a link to ``video_id`` until ``expires``."""
    return urlencode({EXPIRES_PARAM: expires, SIGNATURE_PARAM: sign_link(secret, video_id, expires)})


def _iso(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, timezone.utc).isoformat()


def check_link(secret: bytes, video_id: str, expires: str | None, signature: str | None, now: float) -> int:
    """Return the link's expiry time if its signature matches and ``now`` is not past it, else raise InvalidLink."""
    if expires is None or signature is None:
        raise InvalidLink(
            f"a signed link needs both the '{EXPIRES_PARAM}' and '{SIGNATURE_PARAM}' query parameters; "
            "copy the whole link, or send an API key instead"
        )
    if not expires.isdigit() or len(expires) > 12:
        raise InvalidLink(f"invalid '{EXPIRES_PARAM}' value {expires[:20]!r}: expected a Unix time in whole seconds")
    expected = sign_link(secret, video_id, int(expires))
    if not hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("utf-8")):
        raise InvalidLink(
            f"the link's signature does not match video {video_id} and expiry {expires}; the link was altered "
            "or signed by another server, so ask the video's owner for a new link"
        )
    if now > int(expires):
        raise InvalidLink(
            f"the signed link expired at {_iso(int(expires))} ({now - int(expires):.0f} s ago); "
            "ask the video's owner for a new link"
        )
    return int(expires)


def load_signing_secret(settings: Settings) -> bytes:
    """Return LATENTCAST_SIGNING_SECRET, else the secret in ``data_dir/signing-secret``, created on first use."""
    if settings.signing_secret is not None:
        return settings.signing_secret.get_secret_value().encode("utf-8")
    path = settings.data_dir / SECRET_FILE_NAME
    if not path.exists():
        _create_secret_file(path)
    return _read_secret_file(path)


def _create_secret_file(path: Path) -> None:
    """Write a random secret to ``path`` with mode 0600, unless another process wrote one first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(_SECRET_RANDOM_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        # A hard link is created whole or not at all, so a second API process starting at the
        # same moment either wins here or reads this process's complete file.
        os.link(temporary, path)
        logger.info("generated the signing secret for signed links in %s", path)
    except FileExistsError:
        logger.info("using the signing secret another process wrote to %s", path)
    finally:
        temporary.unlink(missing_ok=True)


def _read_secret_file(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("the signing secret file %s has mode %o, so other users can read it; run chmod 600 on it",
                       path, mode)
    secret = path.read_text().strip()
    if len(secret) < MIN_SIGNING_SECRET_CHARS:
        raise ValueError(
            f"the signing secret in {path} is shorter than {MIN_SIGNING_SECRET_CHARS} characters; delete the file "
            "to generate a new one (links signed with the old secret stop working) or set LATENTCAST_SIGNING_SECRET"
        )
    return secret.encode("utf-8")
