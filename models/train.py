"""Training loop: MSE reconstruction loss plus lambda times the estimated rate.

    loss = lmbda * 255**2 * MSE(x, x_hat) + bpp(likelihoods)

MSE is on [0, 1] pixels, so ``lmbda`` weighs MSE in 0-255 units against bits
per pixel. A checkpoint contains model, optimizer, step and arguments;
``--resume`` continues from one.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from latentcast.models.codec import CodecConfig, FrameCodec, save_model
from latentcast.models.data import Clip, CropSampler, load_clips, to_frame, to_tensor
from latentcast.models.distributed import (
    LaunchContext,
    average_across_ranks,
    launch_context,
    process_group,
    rank_device,
)
from latentcast.models.inter import fit_inter_tables
from latentcast.models.transforms import pad_to_stride
from latentcast_client.metrics import bits_per_pixel, psnr

logger = logging.getLogger(__name__)

# bf16 halves the step time on CPUs with AMX or AVX512-BF16; elsewhere it can be slower.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


@dataclass
class TrainConfig:
    videos: list[str]
    out: str = "runs/train"
    steps: int = 10000
    batch_size: int = 8
    crop: int = 128
    lr: float = 2e-4
    lmbda: float = 0.01
    latent_channels: int = 32
    channels: int = 64
    val_every: int = 1000
    val_frames: int = 2
    clip_grad: float = 1.0
    seed: int = 0
    threads: int = 0
    max_frames: int | None = None
    precision: str = "fp32"
    stop_at: int | None = None
    device: str = "auto"


def rate_distortion(output: dict[str, torch.Tensor], x: torch.Tensor, lmbda: float) -> dict[str, torch.Tensor]:
    batch, _, height, width = x.shape
    mse = torch.mean((output["x_hat"] - x) ** 2)
    bpp = -torch.log2(output["likelihoods"]).sum() / (batch * height * width)
    return {"loss": lmbda * 255.0**2 * mse + bpp, "mse": mse, "bpp": bpp}


def resolve_device(name: str) -> torch.device:
    """Map ``auto`` to cuda when a GPU is visible, else cpu; check that a named device exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"invalid --device {name!r}: expected auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name} requested, but torch sees no CUDA GPU; use --device cpu")
    return device


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up over 200 steps, then cosine decay to 5% of the peak."""
    warmup = min(200, config.steps // 10)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


@torch.no_grad()
def validate(model: FrameCodec, clips: list[Clip], frames_per_clip: int) -> dict[str, dict[str, float]]:
    """Code held-out frames for real: measured bytes under the current tables, PSNR on uint8 RGB."""
    model.eval()
    model.refresh_coder()
    results = {}
    for clip in clips:
        picks = np.linspace(0, len(clip.val) - 1, frames_per_clip).round().astype(int)
        psnrs, bpps = [], []
        for index in sorted(set(picks)):
            frame = clip.val[index]
            height, width = frame.shape[:2]
            latents = model.encode_latents(to_tensor(frame))
            payload = model.coder.encode(latents[0])
            decoded = to_frame(model.decode_latents(latents, height, width)[0])
            psnrs.append(psnr(frame, decoded))
            bpps.append(bits_per_pixel(len(payload), width, height))
        results[clip.name] = {"psnr": float(np.mean(psnrs)), "bpp": float(np.mean(bpps))}
    model.train()
    return results


def save_checkpoint(path: Path, model, optimizer, step: int, config: TrainConfig) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "config": asdict(config)},
        tmp,
    )
    tmp.replace(path)


def train(config: TrainConfig, resume: Path | None = None) -> FrameCodec:
    """Train a FrameCodec. Under torchrun, every rank runs this and DDP averages the gradients."""
    if config.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {config.precision!r}; expected one of {', '.join(PRECISIONS)}")
    context = launch_context()
    if context is None:
        return _train(config, resume, resolve_device(config.device), None)
    if not context.is_main:
        # Only rank 0 reports; the other ranks log warnings and errors alone.
        logging.getLogger("latentcast").setLevel(logging.WARNING)
    device = rank_device(config.device, context)
    with process_group(context, device):
        return _train(config, resume, device, context)


def _train(config: TrainConfig, resume: Path | None, device: torch.device, context: LaunchContext | None) -> FrameCodec:
    rank = context.rank if context else 0
    is_main = rank == 0
    if config.threads:
        torch.set_num_threads(config.threads)
    # A per-rank seed gives each rank its own crops and quantization noise. DDP copies rank 0's
    # initial weights to the other ranks, so the models still start equal.
    torch.manual_seed(config.seed + rank)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    clips = load_clips([Path(v) for v in config.videos], max_frames=config.max_frames)
    sampler = CropSampler(clips, config.crop, seed=config.seed + rank)
    compute_dtype = PRECISIONS[config.precision]
    model = FrameCodec(CodecConfig(config.latent_channels, config.channels)).to(device)
    # oneDNN's convolutions run fastest on NHWC tensors, most of all in bfloat16.
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    step = 0
    if resume is not None:
        checkpoint = torch.load(resume, map_location=device, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = checkpoint["step"]
        if is_main:
            logger.info("resumed from %s at step %d", resume, step)
    network = model if context is None else _wrap_data_parallel(model, device)

    checkpoint_path = out / "checkpoint.pt"
    smoothed: dict[str, float] = {}
    model.train()
    last_step = min(config.steps, config.stop_at or config.steps)
    progress = tqdm(total=last_step, initial=step, desc="train", unit="step", dynamic_ncols=True, disable=not is_main)
    while step < last_step:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        x = sampler.batch(config.batch_size).to(device, non_blocking=True)
        x = x.contiguous(memory_format=torch.channels_last)
        terms = rate_distortion(network(x, compute_dtype), x, config.lmbda)
        # Under torchrun every rank gets the same averages, so all ranks stop together on a NaN.
        loss, mse, bpp = average_across_ranks(
            torch.stack([terms["loss"], terms["mse"], terms["bpp"]]).detach(), context
        ).tolist()
        if not math.isfinite(loss):
            progress.close()
            raise FloatingPointError(
                f"loss is {loss} at step {step}; the last good checkpoint is {checkpoint_path}. "
                "Resume from it with a lower --lr."
            )
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
        optimizer.step()
        step += 1

        batch_psnr = -10 * math.log10(max(mse, 1e-10))
        for key, value in (("loss", loss), ("psnr", batch_psnr), ("bpp", bpp)):
            smoothed[key] = value if key not in smoothed else 0.98 * smoothed[key] + 0.02 * value
        progress.set_postfix(loss=f"{smoothed['loss']:.3f}", psnr=f"{smoothed['psnr']:.2f}", bpp=f"{smoothed['bpp']:.3f}")
        progress.update()

        if is_main and (step % config.val_every == 0 or step == last_step):
            save_checkpoint(checkpoint_path, model, optimizer, step, config)
            for name, result in validate(model, clips, config.val_frames).items():
                logger.info("step %d val %s: %.3f bpp, %.2f dB", step, name, result["bpp"], result["psnr"])
    progress.close()
    model.eval()
    model.refresh_coder()
    if is_main:
        model.inter = fit_inter_tables(model, [clip.train for clip in clips])
        save_model(model, out / "model.safetensors")
        logger.info("wrote %s", out / "model.safetensors")
    return model


def _wrap_data_parallel(model: FrameCodec, device: torch.device) -> DistributedDataParallel:
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig(videos=[])
    parser.add_argument("videos", nargs="+", help="video files to train on; the last 10%% of each is held out")
    parser.add_argument("--out", default=defaults.out, help="folder for checkpoint.pt and model.safetensors")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps in total")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="crops per step and process; under torchrun the effective batch is this "
                             "times the number of processes")
    parser.add_argument("--crop", type=int, default=defaults.crop, help="crop side in pixels")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate (Adam)")
    parser.add_argument("--lmbda", type=float, default=defaults.lmbda, help="weight of MSE (0-255 units) against bpp")
    parser.add_argument("--latent-channels", type=int, default=defaults.latent_channels, help="bottleneck width M")
    parser.add_argument("--channels", type=int, default=defaults.channels, help="hidden channels N")
    parser.add_argument("--val-every", type=int, default=defaults.val_every, help="steps between validation and checkpoint")
    parser.add_argument("--val-frames", type=int, default=defaults.val_frames, help="held-out frames coded per clip")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many frames per video")
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default=defaults.precision,
                        help="compute type of the transforms; the entropy model stays float32")
    parser.add_argument("--device", default=defaults.device,
                        help="auto (a CUDA GPU when present, else cpu), cpu, cuda or cuda:N; "
                             "under torchrun each rank uses cuda:LOCAL_RANK")
    parser.add_argument("--stop-at", type=int, default=None,
                        help="stop after this step, keeping the learning-rate schedule of --steps")
    parser.add_argument("--resume", type=Path, default=None, help="checkpoint.pt to continue from")


def run(args: argparse.Namespace) -> None:
    fields = {key: getattr(args, key) for key in asdict(TrainConfig(videos=[])) if hasattr(args, key)}
    train(TrainConfig(**fields), resume=args.resume)
