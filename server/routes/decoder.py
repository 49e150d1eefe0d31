"""Decoder bundle routes: the manifest and its files, public so any player can fetch them."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.responses import FileResponse

from latentcast.server.deps import CodecDep
from latentcast_client.bundle import BUNDLE_FILES, DECODER_FILE, MANIFEST, TABLES_FILE, sha256_hex

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/decoder", tags=["decoder"])

BUNDLE_SHA256_HEADER = "X-Bundle-Sha256"
_MEDIA_TYPES = {DECODER_FILE: "application/octet-stream", TABLES_FILE: "application/json"}


@router.get("", response_class=Response, responses={200: {"content": {"application/json": {}}}})
def read_decoder_manifest(codec: CodecDep) -> Response:
    """Return the bundle's manifest.json byte for byte; its sha256 is the X-Bundle-Sha256 header."""
    data = (codec.bundle.path / MANIFEST).read_bytes()
    digest = sha256_hex(data)
    if digest != codec.bundle.sha256:
        logger.error("bundle manifest %s changed on disk: sha256 %s, loaded as %s",
                     codec.bundle.path / MANIFEST, digest, codec.bundle.sha256)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            detail="the decoder bundle changed on disk since the server started; restart the server",
        )
    return Response(content=data, media_type="application/json", headers={BUNDLE_SHA256_HEADER: codec.bundle.sha256})


@router.get(
    "/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {"description": "not a bundle file"}},
)
def read_decoder_file(name: str, codec: CodecDep) -> FileResponse:
    """Download one bundle file named in the manifest (decoder.onnx or entropy.json)."""
    if name not in BUNDLE_FILES:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no bundle file named '{name}'; the bundle files are {', '.join(BUNDLE_FILES)}",
        )
    # The path is built from the fixed name in BUNDLE_FILES, never from the request's text.
    known_name = BUNDLE_FILES[BUNDLE_FILES.index(name)]
    headers = {BUNDLE_SHA256_HEADER: codec.bundle.sha256, "ETag": f'"{codec.bundle.manifest.files[known_name]}"'}
    return FileResponse(codec.bundle.path / known_name, media_type=_MEDIA_TYPES[known_name], headers=headers)
