import numpy as np
import pytest
import torch

from latentcast.models.codec import FrameCodec, load_model, model_id, save_model
from latentcast.models.data import to_tensor


def test_forward_returns_frame_and_likelihoods(tiny_model):
    output = tiny_model(torch.rand(2, 3, 32, 48))
    assert output["x_hat"].shape == (2, 3, 32, 48)
    assert output["likelihoods"].shape == (2, 8, 2, 3)


def test_encode_latents_pads_odd_frame_size(tiny_model):
    latents = tiny_model.encode_latents(torch.rand(1, 3, 144, 426))
    assert latents.shape == (1, 8, 9, 27)


def test_encode_latents_returns_int32(tiny_model):
    latents = tiny_model.encode_latents(torch.rand(1, 3, 32, 32))
    assert latents.dtype == np.int32


def test_decode_latents_crops_to_frame_size(tiny_model):
    latents = tiny_model.encode_latents(torch.rand(1, 3, 144, 426))
    frames = tiny_model.decode_latents(latents, 144, 426)
    assert frames.shape == (1, 3, 144, 426)


def test_coded_latent_round_trips_through_bytes(tiny_model, carphone_frames):
    latents = tiny_model.encode_latents(to_tensor(carphone_frames[0]))
    payload = tiny_model.coder.encode(latents[0])
    decoded = tiny_model.coder.decode(payload, *latents.shape[2:])
    assert np.array_equal(decoded, latents[0])


def test_save_and_load_preserve_weights(tiny_model, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_model(tiny_model, path)
    loaded = load_model(path)
    assert loaded.config == tiny_model.config
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.half().float()), key


def test_loaded_weights_are_float32(tiny_model, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_model(tiny_model, path)
    assert all(value.dtype == torch.float32 for value in load_model(path).state_dict().values())


def test_load_model_reports_missing_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="latentcast train"):
        load_model(tmp_path / "absent.safetensors")


def test_load_model_reports_missing_config(tiny_model, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_model(tiny_model, path)
    path.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="config"):
        load_model(path)


def test_model_id_changes_with_weights(tmp_path):
    first, second = tmp_path / "a" / "m.safetensors", tmp_path / "b" / "m.safetensors"
    torch.manual_seed(1)
    save_model(FrameCodec(), first)
    torch.manual_seed(2)
    save_model(FrameCodec(), second)
    assert model_id(first) != model_id(second)


def test_bundled_default_model_loads():
    model = load_model()
    assert model.config.latent_channels > 0


def test_save_and_load_preserve_residual_tables(predictive_model, tmp_path):
    save_model(predictive_model, tmp_path / "m.safetensors")
    assert load_model(tmp_path / "m.safetensors").inter == predictive_model.inter


def test_model_without_residual_tables_loads_without(tiny_model, tmp_path):
    save_model(tiny_model, tmp_path / "m.safetensors")
    assert load_model(tmp_path / "m.safetensors").inter is None


def test_bundled_levels_have_residual_tables():
    assert load_model().inter is not None
