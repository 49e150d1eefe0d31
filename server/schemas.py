"""JSON bodies of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from latentcast.server.storage import VideoRecord, VideoStatus


class VideoLinks(BaseModel):
    self: str = Field(description="this video's status")
    stream: str = Field(description="the encoded stream, available once the status is 'encoded'")
    decoder: str = Field(
        description="the manifest of the decoder bundle for this video: by sha256 once encoded, else by quality level"
    )


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
    quality: int | None = Field(description="quality level the video is encoded at; null for videos stored before levels")
    links: VideoLinks

    @classmethod
    def from_record(cls, record: VideoRecord) -> "Video":
        base = f"/v1/videos/{record.id}"
        if record.bundle_sha256 is not None:
            decoder = f"/v1/bundles/{record.bundle_sha256}"
        elif record.quality is not None:
            decoder = f"/v1/decoder?quality={record.quality}"
        else:
            decoder = "/v1/decoder"
        links = VideoLinks(self=base, stream=f"{base}/stream", decoder=decoder)
        return cls(**vars(record), links=links)


class QualityInfo(BaseModel):
    """One quality level the server encodes at; bpp and psnr appear when the level's weights record them."""

    quality: int = Field(description="level number, 1 = smallest files")
    model_id: str
    bundle_sha256: str = Field(description="sha256 of the level's bundle manifest, served at /v1/bundles/{sha256}")
    default: bool = Field(description="whether uploads without a quality are encoded at this level")
    bpp: float | None = Field(default=None, description="bits per pixel measured for this level")
    psnr: float | None = Field(default=None, description="RGB PSNR in dB measured for this level")


class Health(BaseModel):
    status: str
    model_id: str = Field(description="model of the default quality level")
    bundle_sha256: str = Field(description="decoder bundle of the default quality level")
    default_quality: int
    queued_jobs: int = Field(description="encode jobs waiting for a worker")
