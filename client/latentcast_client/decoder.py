"""Frame reconstruction on the player: entropy decoding, then the ONNX synthesis transform.

A FrameDecoder keeps the last decoded latent as the reference of the next predicted
frame, so it decodes the packets of one stream in order, from a keyframe on.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from latentcast_client.bundle import Bundle
from latentcast_client.entropy import LatentCoder
from latentcast_client.errors import BundleError, StreamError
from latentcast_client.inter import InterCoder, Reference
from latentcast_client.stream import READABLE_VERSIONS, Packet, PacketType, StreamHeader


def _latent_size(length: int, stride: int) -> int:
    return -(-length // stride)


class FrameDecoder:
    """Decodes the packets of streams made for one bundle into uint8 RGB frames (H, W, 3)."""

    def __init__(self, bundle: Bundle, threads: int = 0):
        self.bundle = bundle
        self.coder = LatentCoder(bundle.tables())
        inter_tables = bundle.inter_tables()
        self.inter = InterCoder(inter_tables) if inter_tables is not None else None
        self.reference = Reference()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(bundle.decoder_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self.session.get_inputs()[0].name

    def check_header(self, header: StreamHeader) -> None:
        """Raise BundleError if the stream was encoded for another bundle or format."""
        manifest = self.bundle.manifest
        if header.bundle_sha256 != self.bundle.sha256:
            raise BundleError(
                f"stream needs decoder bundle {header.bundle_sha256[:16]}, but bundle {self.bundle.sha256[:16]} "
                f"({manifest.model_id}) is loaded; fetch the bundle the stream's server serves"
            )
        if manifest.stream_format_version not in READABLE_VERSIONS:
            raise BundleError(
                f"bundle is for stream format {manifest.stream_format_version}, player reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )

    def decode_latent(self, packet: Packet, header: StreamHeader) -> np.ndarray:
        """Entropy-decode one packet into its int32 latent (C, h, w); a P-frame needs the packet before it."""
        try:
            if packet.type == PacketType.INTRA:
                return self._decode_intra(packet, header)
            if packet.type == PacketType.PREDICTED:
                return self._decode_predicted(packet)
        except StreamError as exc:
            self.reference.clear()
            raise StreamError(f"packet {packet.index} cannot be decoded: {exc}") from exc
        raise StreamError(f"packet {packet.index} has type {packet.type!r}, which this decoder cannot decode")

    def _decode_intra(self, packet: Packet, header: StreamHeader) -> np.ndarray:
        stride = self.bundle.manifest.stride
        latent = self.coder.decode(packet.payload, _latent_size(header.height, stride), _latent_size(header.width, stride))
        self.reference.reset(latent, packet.index)
        return latent

    def _decode_predicted(self, packet: Packet) -> np.ndarray:
        if self.inter is None:
            raise StreamError("it is a predicted frame, but the bundle has no residual tables (inter.json)")
        self.reference.expect(packet.index)
        residual = self.inter.decode(packet.payload, self.reference.residual)
        return self.reference.advance(residual, packet.index)

    def synthesize(self, latent: np.ndarray, height: int, width: int) -> np.ndarray:
        """Run the ONNX decoder on an int latent (C, h, w); uint8 RGB cropped to (height, width)."""
        (output,) = self.session.run(None, {self._input: latent[None].astype(np.float32)})
        frame = output[0, :, :height, :width]
        return np.rint(np.clip(frame, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(1, 2, 0)

    def decode(self, packet: Packet, header: StreamHeader) -> np.ndarray:
        return self.synthesize(self.decode_latent(packet, header), header.height, header.width)
