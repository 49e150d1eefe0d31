"""The ONNX decoder that players run must reproduce the torch decoder."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from latentcast.models.codec import load_model
from latentcast.models.data import to_tensor
from latentcast.models.export import export_bundle
from latentcast_client.bundle import load_bundle
from latentcast_client.entropy import EntropyTables
from latentcast_client.video import read_frames


@pytest.fixture(scope="module")
def default_model():
    return load_model()


@pytest.fixture(scope="module")
def bundle(default_model, tmp_path_factory):
    return export_bundle(default_model, tmp_path_factory.mktemp("bundle") / "default", "default-test")


@pytest.mark.parametrize(
    "clip,height,width",
    [("carphone.mp4", 144, 176), ("basketball.mp4", 240, 426), ("bikes.mp4", 272, 640), ("foreman.264", 288, 352)],
)
def test_onnx_decoder_matches_torch(default_model, bundle, clip_dir, clip, height, width):
    frame = next(read_frames(clip_dir / clip))
    assert frame.shape[:2] == (height, width)
    latents = default_model.encode_latents(to_tensor(frame))
    expected = default_model.decode_latents(latents, height, width)[0].numpy()
    session = ort.InferenceSession(str(bundle.decoder_path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"latent": latents.astype(np.float32)})
    actual = output[0, :, :height, :width]
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() < 1e-4


def test_exported_bundle_verifies(bundle):
    assert load_bundle(bundle.path).sha256 == bundle.sha256


def test_exported_tables_match_model(default_model, bundle):
    assert bundle.tables() == default_model.entropy_tables()


def test_exported_tables_round_trip_json(bundle):
    tables = bundle.tables()
    assert EntropyTables.from_json(tables.to_json()) == tables


def test_export_replaces_existing_bundle(default_model, bundle, tmp_path):
    folder = tmp_path / "b"
    export_bundle(default_model, folder, "first")
    second = export_bundle(default_model, folder, "second")
    assert second.manifest.model_id == "second"
