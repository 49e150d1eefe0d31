import os
import subprocess
import sys

import pytest
import torch

from latentcast.models.codec import load_model
from latentcast.models.distributed import LaunchContext, average_across_ranks, launch_context, rank_device
from latentcast.server.process import free_port

TORCHRUN_ENV = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}


def _torchrun_train(clip_dir, out, *extra: str) -> subprocess.CompletedProcess:
    """Run ``latentcast train`` as two gloo processes on tiny settings; ``extra`` adds options."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        "-m", "latentcast.server.cli", "train", str(clip_dir / "carphone.mp4"), "--out", str(out),
        "--batch-size", "2", "--crop", "64", "--latent-channels", "8", "--channels", "16",
        "--max-frames", "16", "--val-frames", "1", "--threads", "1", "--device", "cpu", *extra,
    ]
    env = {key: value for key, value in os.environ.items() if key not in TORCHRUN_ENV}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_launch_context_absent_without_variables():
    assert launch_context({}) is None


def test_launch_context_reads_torchrun_variables():
    assert launch_context(TORCHRUN_ENV) == LaunchContext(rank=1, local_rank=1, world_size=2)


def test_launch_context_marks_rank_zero_main():
    assert launch_context({**TORCHRUN_ENV, "RANK": "0"}).is_main


def test_launch_context_rejects_missing_variable():
    with pytest.raises(ValueError, match="LOCAL_RANK missing"):
        launch_context({"WORLD_SIZE": "2", "RANK": "0"})


def test_launch_context_rejects_non_integer():
    with pytest.raises(ValueError, match="invalid RANK='one'"):
        launch_context({**TORCHRUN_ENV, "RANK": "one"})


def test_launch_context_rejects_rank_beyond_world():
    with pytest.raises(ValueError, match="invalid RANK=2"):
        launch_context({**TORCHRUN_ENV, "RANK": "2"})


def test_rank_device_auto_without_gpu_is_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert rank_device("auto", launch_context(TORCHRUN_ENV)) == torch.device("cpu")


def test_rank_device_cuda_uses_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert rank_device("cuda", launch_context(TORCHRUN_ENV)) == torch.device("cuda", 1)


def test_rank_device_rejects_local_rank_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="LOCAL_RANK=1 has no GPU"):
        rank_device("cuda", launch_context(TORCHRUN_ENV))


def test_rank_device_rejects_numbered_gpu():
    with pytest.raises(ValueError, match="invalid --device 'cuda:0' under torchrun"):
        rank_device("cuda:0", launch_context(TORCHRUN_ENV))


def test_average_across_ranks_single_process_unchanged():
    values = torch.tensor([1.0, 2.0])
    assert torch.equal(average_across_ranks(values, None), values)


def test_torchrun_trains_and_resumes(clip_dir, tmp_path):
    first = _torchrun_train(clip_dir, tmp_path, "--steps", "4", "--val-every", "4")
    assert first.returncode == 0, first.stderr
    assert load_model(tmp_path / "model.safetensors").config.latent_channels == 8
    checkpoint = tmp_path / "checkpoint.pt"
    assert torch.load(checkpoint, weights_only=True)["step"] == 4
    # Only rank 0 validates, so one validation line for the one validation step.
    assert first.stderr.count("step 4 val carphone") == 1

    resumed = _torchrun_train(clip_dir, tmp_path, "--steps", "6", "--val-every", "6", "--resume", str(checkpoint))
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(checkpoint, weights_only=True)["step"] == 6


def test_torchrun_nan_loss_stops_every_rank(clip_dir, tmp_path):
    result = _torchrun_train(clip_dir, tmp_path, "--steps", "4", "--val-every", "4", "--lmbda", "nan")
    assert result.returncode != 0
    assert "[rank0]: FloatingPointError" in result.stderr
    assert "[rank1]: FloatingPointError" in result.stderr
