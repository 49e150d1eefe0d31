"""``GET /v1/qualities``: the quality levels a server encodes at, with their bundles."""

from __future__ import annotations

from fastapi import APIRouter

from latentcast.server.deps import CodecsDep
from latentcast.server.schemas import QualityInfo

router = APIRouter(prefix="/v1/qualities", tags=["decoder"])


@router.get("", response_model_exclude_none=True)
def list_qualities(codecs: CodecsDep) -> list[QualityInfo]:
    """List the quality levels, lowest first; bpp and psnr are present only where the weights record them."""
    items = []
    for quality in codecs.qualities:
        package = codecs.get(quality)
        level = codecs.levels.get(quality)
        items.append(QualityInfo(
            quality=quality, model_id=package.model_id, bundle_sha256=package.bundle.sha256,
            default=quality == codecs.default_quality,
            bpp=level.bpp if level is not None else None, psnr=level.psnr if level is not None else None,
        ))
    return items
