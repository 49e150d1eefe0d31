"""Signed link route: the owner of a video creates an expiring link that plays it without a key."""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Body, Request, status
from pydantic import BaseModel, Field

from latentcast.server.auth import KEY_RESPONSES, ApiKeyDep, OwnedVideoDep
from latentcast.server.deps import SigningSecretDep
from latentcast.server.signing import MAX_LINK_SECONDS, MIN_LINK_SECONDS, link_query

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/videos", tags=["videos"])


class LinkRequest(BaseModel):
    expires_in: int = Field(
        ge=MIN_LINK_SECONDS, le=MAX_LINK_SECONDS,
        description=f"seconds until the link stops working, {MIN_LINK_SECONDS} to {MAX_LINK_SECONDS} (7 days)",
    )


class SignedLink(BaseModel):
    """A link that reads one video's status, stream and index without an API key until it expires."""

    video_id: str
    url: str = Field(description="the video's status URL with the signature; the player accepts it as it is")
    stream_url: str = Field(description="the stream URL with the same signature")
    path: str = Field(description="the status URL's path and query, for clients behind a proxy that rewrites hosts")
    expires: int = Field(description="Unix time in seconds at which the link stops working")
    expires_at: str = Field(description="the same time in ISO 8601, UTC")


@router.post(
    "/{video_id}/links",
    status_code=status.HTTP_201_CREATED,
    responses={**KEY_RESPONSES, 404: {"description": "no video with this id for this key"}},
)
def create_link(video: OwnedVideoDep, key: ApiKeyDep, secret: SigningSecretDep, request: Request,
                body: Annotated[LinkRequest, Body()]) -> SignedLink:
    """Create a signed link to a video that lets anyone holding it read its status, stream and index until it expires.

    The link keeps working while the video exists and the key that created it is not revoked.
    """
    expires = math.ceil(time.time()) + body.expires_in
    query = link_query(secret, video.id, expires)
    base = str(request.base_url).rstrip("/")
    path = f"/v1/videos/{video.id}"
    logger.info("created a signed link to video=%s for key=%s, expiring in %d s", video.id, key.id, body.expires_in)
    return SignedLink(
        video_id=video.id, url=f"{base}{path}?{query}", stream_url=f"{base}{path}/stream?{query}",
        path=f"{path}?{query}", expires=expires,
        expires_at=datetime.fromtimestamp(expires, timezone.utc).isoformat(),
    )
