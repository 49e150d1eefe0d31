"""JSON bodies of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from latentcast.server.storage import VideoRecord, VideoStatus


class VideoLinks(BaseModel):
    self: str = Field(description="this video's status")
    stream: str = Field(description="the encoded stream, available once the status is 'encoded'")
    decoder: str = Field(description="the decoder bundle's manifest")


class Video(BaseModel):
    """A stored video: its source properties, encode status and, once encoded, the encode results."""

    id: str
    filename: str = Field(description="name of the uploaded file, kept as metadata only")
    status: VideoStatus
    progress: float = Field(ge=0.0, le=1.0, description="fraction of frames encoded")
    error: str | None = Field(description="why the encode failed, when the status is 'failed'")
    created_at: str
    updated_at: str
    width: int
    height: int
    fps: float
    frame_count: int = Field(description="frames decoded from the upload")
    frames: int | None = Field(description="frames in the stream")
    bytes: int | None = Field(description="size of the stream in bytes")
    bpp: float | None = Field(description="stream bits per pixel")
    psnr: float | None = Field(description="mean per-frame RGB PSNR of the decoded stream, in dB")
    encode_fps: float | None = Field(description="frames encoded per second")
    model_id: str | None
    bundle_sha256: str | None = Field(description="sha256 of the decoder bundle's manifest.json")
    links: VideoLinks

    @classmethod
    def from_record(cls, record: VideoRecord) -> "Video":
        base = f"/v1/videos/{record.id}"
        links = VideoLinks(self=base, stream=f"{base}/stream", decoder="/v1/decoder")
        return cls(**vars(record), links=links)


class Health(BaseModel):
    status: str
    model_id: str
    bundle_sha256: str
    queued_jobs: int = Field(description="encode jobs waiting for a worker")
