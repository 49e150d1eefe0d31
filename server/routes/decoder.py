"""Decoder bundle routes by quality level: the manifest and its files, public so any player can fetch them.

``GET /v1/decoder`` serves the default level's bundle, ``?quality=N`` another level's.
The same bundles are served by sha256 under ``/v1/bundles`` (see ``bundles``).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import FileResponse

from latentcast.models.package import CodecPackage
from latentcast.server.deps import CodecsDep, quality_package
from latentcast_client.bundle import DECODER_FILE, INTER_FILE, MANIFEST, TABLES_FILE, sha256_hex

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/decoder", tags=["decoder"])

BUNDLE_SHA256_HEADER = "X-Bundle-Sha256"
_MEDIA_TYPES = {DECODER_FILE: "application/octet-stream", TABLES_FILE: "application/json", INTER_FILE: "application/json"}

# Read as text so that a non-integer gets the same 422 detail, with the valid levels, as an unknown level.
QualityQuery = Annotated[
    str | None, Query(description="quality level (an integer, see GET /v1/qualities); default: the default level")
]


def manifest_response(package: CodecPackage, headers: dict[str, str] | None = None) -> Response:
    """Return the bundle's manifest.json byte for byte; its sha256 is the X-Bundle-Sha256 header."""
    bundle = package.bundle
    data = (bundle.path / MANIFEST).read_bytes()
    digest = sha256_hex(data)
    if digest != bundle.sha256:
        logger.error("bundle manifest %s changed on disk: sha256 %s, loaded as %s",
                     bundle.path / MANIFEST, digest, bundle.sha256)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            detail="the decoder bundle changed on disk since the server started; restart the server",
        )
    return Response(
        content=data, media_type="application/json", headers={BUNDLE_SHA256_HEADER: bundle.sha256, **(headers or {})}
    )


def file_response(package: CodecPackage, name: str, headers: dict[str, str] | None = None) -> FileResponse:
    """Return one bundle file named in the manifest; 404 for any other name."""
    bundle = package.bundle
    listed = bundle.manifest.listed_files()
    if name not in listed:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no bundle file named '{name}'; the bundle files are {', '.join(listed)}",
        )
    # The path is built from the fixed names of the manifest's files, never from the request's text.
    known_name = listed[listed.index(name)]
    all_headers = {
        BUNDLE_SHA256_HEADER: bundle.sha256, "ETag": f'"{bundle.manifest.files[known_name]}"', **(headers or {})
    }
    return FileResponse(bundle.path / known_name, media_type=_MEDIA_TYPES[known_name], headers=all_headers)


_QUALITY_ERROR = {422: {"description": "unknown quality level; the detail lists the valid ones"}}


@router.get(
    "", response_class=Response, responses={200: {"content": {"application/json": {}}}, **_QUALITY_ERROR}
)
def read_decoder_manifest(codecs: CodecsDep, quality: QualityQuery = None) -> Response:
    """Return the manifest of a level's bundle byte for byte; its sha256 is the X-Bundle-Sha256 header."""
    return manifest_response(quality_package(codecs, quality))


@router.get(
    "/{name}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}}, 404: {"description": "not a bundle file"}, **_QUALITY_ERROR
    },
)
def read_decoder_file(name: str, codecs: CodecsDep, quality: QualityQuery = None) -> FileResponse:
    """Download one file of a level's bundle (decoder.onnx, entropy.json, and inter.json where listed)."""
    return file_response(quality_package(codecs, quality), name)
