"""Access control of the video routes: API keys, ownership, signed links and the per-key rate limit.

A request sends its key as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``. A missing,
unknown or revoked key gets 401 with a ``WWW-Authenticate: Bearer`` challenge. A key can read
only the videos uploaded with it. Another key's video gets the same 404 as a missing one, so
a key cannot learn which ids exist. Reading a video's metadata, stream and index also works
with a signed link (``signing``) in place of a key. Past the rate limit a key gets 429 with
``Retry-After``. The decoder bundle routes, /v1/qualities, /healthz, /metrics and /docs use
none of this and stay public.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from latentcast.server.deps import RateLimiterDep, SigningSecretDep, StorageDep
from latentcast.server.keys import hash_key
from latentcast.server.ratelimit import RateLimiter
from latentcast.server.signing import EXPIRES_PARAM, SIGNATURE_PARAM, InvalidLink, check_link
from latentcast.server.storage import ApiKeyRecord, Storage, VideoRecord

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
_CREATE_KEY_HINT = "create one with `latentcast keys create NAME`"

bearer_scheme = HTTPBearer(
    auto_error=False, description=f"an API key from `latentcast keys create`; {API_KEY_HEADER} is an alternative"
)
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="an API key, for clients that cannot send Authorization"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]
HeaderKeyDep = Annotated[str | None, Security(api_key_scheme)]
ExpiresQuery = Annotated[
    str | None, Query(alias=EXPIRES_PARAM, description="signed link: Unix time in seconds at which it stops working")
]
SignatureQuery = Annotated[
    str | None, Query(alias=SIGNATURE_PARAM, description="signed link: its HMAC-SHA256 signature, in hex")
]

# OpenAPI entries for the responses these dependencies add to a route.
KEY_RESPONSES: dict[int | str, dict] = {
    401: {"description": "no API key, or an unknown or revoked one; WWW-Authenticate names the Bearer scheme"},
    429: {"description": "the key's rate limit is reached; Retry-After gives the seconds to wait"},
}
LINK_RESPONSES: dict[int | str, dict] = {
    **KEY_RESPONSES,
    403: {"description": "the signed link is malformed, altered or expired, or its owner's key is revoked"},
}


def _unauthorized(detail: str, invalid_token: bool) -> HTTPException:
    # RFC 6750 section 3: the challenge names the error when a token was sent but rejected.
    challenge = 'Bearer realm="latentcast"' + (', error="invalid_token"' if invalid_token else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


def authenticate(storage: Storage, key: str | None) -> ApiKeyRecord:
    """Return the active key record for the key text ``key``; raise 401 for a missing, unknown or revoked key."""
    if not key:
        raise _unauthorized(
            f"this route needs an API key: send 'Authorization: Bearer KEY' or '{API_KEY_HEADER}: KEY' "
            f"({_CREATE_KEY_HINT})", invalid_token=False,
        )
    record = storage.api_key_by_hash(hash_key(key))
    if record is None:
        raise _unauthorized(
            f"the API key is not valid; check that it was copied whole, or {_CREATE_KEY_HINT}", invalid_token=True
        )
    if record.revoked:
        raise _unauthorized(
            f"the API key {record.id} was revoked at {record.revoked_at}; use another key or {_CREATE_KEY_HINT}",
            invalid_token=True,
        )
    return record


def enforce_rate_limit(limiter: RateLimiter, bucket: str, holder: str) -> None:
    """Take one request from ``bucket``; raise 429 with Retry-After in whole seconds when it is empty."""
    wait_seconds = limiter.acquire(bucket)
    if wait_seconds <= 0:
        return
    retry_after = max(1, math.ceil(wait_seconds))
    # The 429 responses are counted in latentcast_http_errors_total, so one log line each is only for debugging.
    logger.debug("rate limit reached by %s; retry after %d s", holder, retry_after)
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"{holder} sent more than {limiter.per_minute} requests per minute (bursts up to {limiter.burst}); "
        f"retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def _presented_key(bearer: HTTPAuthorizationCredentials | None, header_key: str | None) -> str | None:
    return bearer.credentials if bearer is not None else header_key


def require_api_key(storage: StorageDep, limiter: RateLimiterDep, bearer: BearerDep,
                    header_key: HeaderKeyDep) -> ApiKeyRecord:
    """Authenticate the request's API key and count the request against its rate limit."""
    record = authenticate(storage, _presented_key(bearer, header_key))
    enforce_rate_limit(limiter, f"key:{record.id}", f"API key {record.id}")
    return record


ApiKeyDep = Annotated[ApiKeyRecord, Depends(require_api_key)]


def video_not_found(video_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"video {video_id} not found")


def get_owned_video(video_id: str, storage: StorageDep, key: ApiKeyDep) -> VideoRecord:
    """Load the video named in the path; 404 when it is missing or was uploaded with another key."""
    record = storage.get(video_id)
    # NOTE: videos stored before API keys existed have no owner, so every key gets 404 for them.
    # No command sets their owner_key_id column yet.
    if record is None or record.owner_key_id != key.id:
        raise video_not_found(video_id)
    return record


OwnedVideoDep = Annotated[VideoRecord, Depends(get_owned_video)]


def _linked_video(storage: Storage, video_id: str) -> VideoRecord:
    """Load the video of a link whose signature checked out; 403 once its owner's key is revoked."""
    record = storage.get(video_id)
    if record is None:
        raise video_not_found(video_id)
    owner = storage.api_key(record.owner_key_id) if record.owner_key_id is not None else None
    if owner is None or owner.revoked:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"the API key that signed this link to video {video_id} is revoked, so the link no longer works",
        )
    return record


def get_shared_video(video_id: str, storage: StorageDep, limiter: RateLimiterDep, secret: SigningSecretDep,
                     bearer: BearerDep, header_key: HeaderKeyDep, expires: ExpiresQuery = None,
                     signature: SignatureQuery = None) -> VideoRecord:
    """Load the video named in the path for reading, with a signed link or else the owner's API key.

    A request with either link parameter is checked as a link only: 403 for a malformed,
    altered or expired link, even when it also sends a key.
    """
    if expires is None and signature is None:
        key = require_api_key(storage, limiter, bearer, header_key)
        return get_owned_video(video_id, storage, key)
    try:
        check_link(secret, video_id, expires, signature, time.time())
    except InvalidLink as exc:
        logger.info("rejected signed link to video=%s: %s", video_id, exc)
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from exc
    # check_link accepts the hex digits in either case, so the bucket takes one form of them.
    enforce_rate_limit(limiter, f"link:{signature.lower()}", f"the signed link to video {video_id}")
    return _linked_video(storage, video_id)


SharedVideoDep = Annotated[VideoRecord, Depends(get_shared_video)]
