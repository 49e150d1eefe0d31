import math

import pytest
import torch

from latentcast.models.codec import load_model
from latentcast.models.data import to_tensor
from latentcast.models.train import TrainConfig, learning_rate, resolve_device, train


def _config(clip_dir, tmp_path, **overrides) -> TrainConfig:
    settings = dict(
        videos=[str(clip_dir / "carphone.mp4")], out=str(tmp_path), steps=30, batch_size=4, crop=64,
        lr=1e-3, latent_channels=8, channels=16, val_every=30, val_frames=1, max_frames=16, threads=1,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def test_train_improves_reconstruction(clip_dir, carphone_frames, tmp_path):
    start = train(_config(clip_dir, tmp_path / "start", steps=1, val_every=1))
    trained = train(_config(clip_dir, tmp_path / "trained"))
    x = to_tensor(carphone_frames[-1])[..., :64, :64]
    with torch.no_grad():
        error_start = torch.mean((start(x)["x_hat"] - x) ** 2).item()
        error_trained = torch.mean((trained(x)["x_hat"] - x) ** 2).item()
    assert error_trained < error_start


def test_train_writes_loadable_weights(clip_dir, tmp_path):
    train(_config(clip_dir, tmp_path, steps=5, val_every=5))
    assert load_model(tmp_path / "model.safetensors").config.latent_channels == 8


def test_train_resumes_from_checkpoint(clip_dir, tmp_path):
    train(_config(clip_dir, tmp_path, steps=4, val_every=2))
    checkpoint = tmp_path / "checkpoint.pt"
    train(_config(clip_dir, tmp_path, steps=6, val_every=2), resume=checkpoint)
    assert torch.load(checkpoint, weights_only=True)["step"] == 6


def test_train_stops_on_nan_loss(clip_dir, tmp_path):
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        train(_config(clip_dir, tmp_path, lmbda=math.nan))


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(videos=[], steps=2000, lr=1e-3)
    assert learning_rate(0, config) < learning_rate(199, config)
    assert learning_rate(1999, config) < learning_rate(200, config)
    assert learning_rate(1999, config) >= 0.05 * config.lr - 1e-12


def test_train_in_bfloat16_writes_float32_weights(clip_dir, tmp_path):
    train(_config(clip_dir, tmp_path, steps=3, val_every=3, precision="bf16"))
    model = load_model(tmp_path / "model.safetensors")
    assert all(value.dtype == torch.float32 for value in model.state_dict().values())


def test_train_rejects_unknown_precision(clip_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown precision"):
        train(_config(clip_dir, tmp_path, precision="fp8"))


def test_train_stop_at_keeps_schedule_and_checkpoints(clip_dir, tmp_path):
    train(_config(clip_dir, tmp_path, steps=10, val_every=5, stop_at=4))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 4


def test_resolve_device_auto_without_gpu_is_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_resolve_device_rejects_missing_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_resolve_device_rejects_unknown_name():
    with pytest.raises(ValueError, match="invalid --device"):
        resolve_device("tpu0")


def test_train_rejects_partial_launcher_variables(clip_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    with pytest.raises(ValueError, match="RANK, LOCAL_RANK missing"):
        train(_config(clip_dir, tmp_path, steps=1, val_every=1))

