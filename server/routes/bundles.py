"""Content-addressed bundle routes: a bundle by the sha256 of its manifest, as stream headers name it."""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.responses import FileResponse

from latentcast.models.package import CodecPackage
from latentcast.server.codecs import CodecRegistry
from latentcast.server.deps import CodecsDep
from latentcast.server.routes.decoder import file_response, manifest_response

router = APIRouter(prefix="/v1/bundles", tags=["decoder"])

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A sha256 names one exact content, so caches may keep the response for good.
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_ERRORS = {
    404: {"description": "no bundle with this sha256 on this server, or not a bundle file"},
    422: {"description": "the sha256 is not 64 lowercase hex digits"},
}


def _package(codecs: CodecRegistry, sha256: str) -> CodecPackage:
    if not _SHA256_HEX.fullmatch(sha256):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"invalid bundle sha256 {sha256[:80]!r}: expected 64 lowercase hex digits",
        )
    package = codecs.by_sha256(sha256)
    if package is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no decoder bundle with sha256 {sha256} on this server; GET /v1/qualities lists the bundles it has",
        )
    return package


@router.get("/{sha256}", response_class=Response, responses={200: {"content": {"application/json": {}}}, **_ERRORS})
def read_bundle_manifest(sha256: str, codecs: CodecsDep) -> Response:
    """Return the manifest.json whose sha256 is ``sha256``, byte for byte."""
    return manifest_response(_package(codecs, sha256), _IMMUTABLE)


@router.get(
    "/{sha256}/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS},
)
def read_bundle_file(sha256: str, name: str, codecs: CodecsDep) -> FileResponse:
    """Download one file (decoder.onnx or entropy.json) of the bundle whose manifest has this sha256."""
    return file_response(_package(codecs, sha256), name, _IMMUTABLE)
