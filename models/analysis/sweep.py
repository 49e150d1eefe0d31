"""Bottleneck sweep: reconstruction quality against the width of the latent code.

Every width trains the same shallow autoencoder on the same crops with the same
number of steps. The sweep uses its own autoencoder with stride 4 instead of the
codec's stride 16: one latent position covers 3 x 4 x 4 = 48 input values, so a
code wider than the input (48 channels or more) stays cheap to train. The
codec's transforms would need 768 latent channels, and hidden layers wider than
192 channels, before their code could hold a copy of the input.

Without a rate term the code is the float output of the encoder, and its size
is counted in values per frame. With ``lmbda`` the loss is the codec's
rate-distortion loss, the code is rounded, and its size is measured in bytes
from the project's range coder.

Held-out frames and uniform noise images are both reconstructed. A code at
least as large as the input, trained without a rate term, can represent the
identity, so it may copy any input. The noise PSNR measures how far training
got towards that copy on inputs unlike the training frames. Without a rate term
the sweep also reports the optimal linear autoencoder of each width
(``linear_ae``), computed in closed form: the end point that training heads for.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from latentcast.models.analysis.common import fit_max_side, label_strip, pyplot, save_figure, set_threads, tile
from latentcast.models.analysis.common import write_png, write_table
from latentcast.models.analysis.linear_ae import LinearAutoencoder
from latentcast.models.data import Clip, CropSampler, load_clips, to_frame, to_tensor
from latentcast.models.entropy import FactorizedDensity, quantize
from latentcast.models.train import TrainConfig, learning_rate, rate_distortion
from latentcast_client.entropy import LatentCoder
from latentcast_client.metrics import bits_per_pixel, psnr

logger = logging.getLogger(__name__)

# Downsampling factor of the sweep autoencoder; a latent position covers 3 * SWEEP_STRIDE**2 input values.
SWEEP_STRIDE = 4
DEFAULT_WIDTHS = (1, 2, 4, 8, 16, 32, 48, 96)
# Training frames per clip that the linear optimum is fitted on, spread over the clip.
LINEAR_FIT_FRAMES = 40
NETWORK = "network"
LINEAR_OPTIMUM = "linear optimum"


class SweepAutoencoder(nn.Module):
    """Two stride-2 convolutions down, two pixel-shuffle upsamplings back: (B, 3, H, W) <-> (B, M, H/4, W/4).

    The hidden layer has ``channels`` channels at stride 2, where a position
    covers 12 input values, so with 64 channels only the latent can be the
    bottleneck. ReLU rather than the codec's GDN: in trial runs of a few hundred
    steps on carphone it reached a higher PSNR at 96 channels.
    ``with_prior`` adds a factorized density for the rate term.
    """

    def __init__(self, latent_channels: int, channels: int = 64, with_prior: bool = False):
        super().__init__()
        self.latent_channels = latent_channels
        self.g_a = nn.Sequential(
            nn.Conv2d(3, channels, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(channels, latent_channels, 5, stride=2, padding=2),
        )
        self.g_s = nn.Sequential(
            nn.Conv2d(latent_channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(),
            nn.Conv2d(channels, 3 * 4, 3, padding=1), nn.PixelShuffle(2),
        )
        self.prior = FactorizedDensity(latent_channels) if with_prior else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.g_a(x)
        if self.prior is None:
            return {"x_hat": self.g_s(y)}
        return {"x_hat": self.g_s(quantize(y, "ste")), "likelihoods": self.prior(quantize(y, "noise"))}


@dataclass
class SweepConfig:
    videos: list[str]
    out: str = "runs/sweep"
    widths: list[int] = field(default_factory=lambda: list(DEFAULT_WIDTHS))
    lmbda: float | None = None
    steps: int = 400
    batch_size: int = 8
    crop: int = 64
    lr: float = 5e-3
    channels: int = 64
    eval_frames: int = 4
    max_frames: int | None = None
    seed: int = 0
    threads: int = 0


@dataclass
class SweepRow:
    """One trained width: its code size and its PSNR on held-out frames and on uniform noise.

    Sizes are values per frame, averaged over the evaluation frames when their sizes differ.
    """

    width: int
    model: str  # NETWORK (trained for the sweep's steps) or LINEAR_OPTIMUM (closed form)
    rate_term: bool
    code_values: int
    input_values: int
    code_to_input: float
    psnr_real: float
    psnr_noise: float
    bpp: float | None
    train_seconds: float


@dataclass
class SweepResult:
    rows: list[SweepRow]
    # Per width: decoded eval frames and decoded noise images, uint8 RGB, same order as ``inputs``.
    reconstructions: dict[int, list[np.ndarray]]
    inputs: list[np.ndarray]
    linear_rows: list[SweepRow] = field(default_factory=list)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    pad_h = -x.shape[-2] % multiple
    pad_w = -x.shape[-1] % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def train_width(width: int, clips: list[Clip], config: SweepConfig) -> SweepAutoencoder:
    """Train one width; the crop sampler and the initial weights depend only on the seed."""
    torch.manual_seed(config.seed)
    model = SweepAutoencoder(width, config.channels, with_prior=config.lmbda is not None)
    sampler = CropSampler(clips, config.crop, seed=config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = TrainConfig(videos=[], steps=config.steps, lr=config.lr)
    model.train()
    for step in tqdm(range(config.steps), desc=f"width {width}", unit="step", leave=False, dynamic_ncols=True):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, schedule)
        x = sampler.batch(config.batch_size)
        output = model(x)
        if config.lmbda is None:
            loss = torch.mean((output["x_hat"] - x) ** 2)
        else:
            loss = rate_distortion(output, x, config.lmbda)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return model.eval()


@torch.no_grad()
def reconstruct(model: SweepAutoencoder, frame: np.ndarray, coder: LatentCoder | None) -> tuple[np.ndarray, int]:
    """Decode one uint8 frame; return the decoded frame and the measured payload bytes (0 without a coder)."""
    height, width = frame.shape[:2]
    y = model.g_a(pad_to_multiple(to_tensor(frame), SWEEP_STRIDE))
    payload_bytes = 0
    if coder is not None:
        latent = coder.clip(torch.round(y)[0].to(torch.int64).numpy())
        payload_bytes = len(coder.encode(latent))
        y = torch.from_numpy(latent).float().unsqueeze(0)
    x_hat = model.g_s(y)[..., :height, :width]
    return to_frame(x_hat[0]), payload_bytes


def noise_images(shapes: list[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    """Uniform uint8 noise images of the given shapes."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in shapes]


def evaluation_frames(clips: list[Clip], per_clip: int) -> list[np.ndarray]:
    frames = []
    for clip in clips:
        picks = np.linspace(0, len(clip.val) - 1, per_clip).round().astype(int)
        frames.extend(clip.val[i] for i in sorted(set(picks)))
    return frames


def evaluate_width(model: SweepAutoencoder, real: list[np.ndarray], noise: list[np.ndarray]) -> dict:
    coder = LatentCoder(model.prior.frequency_tables()) if model.prior is not None else None
    decoded_real, payloads = zip(*(reconstruct(model, frame, coder) for frame in real))
    decoded_noise = [reconstruct(model, image, coder)[0] for image in noise]
    pixels = sum(frame.shape[0] * frame.shape[1] for frame in real)
    bpp = bits_per_pixel(sum(payloads), pixels, 1) if coder is not None else None
    return {
        "psnr_real": float(np.mean([psnr(a, b) for a, b in zip(real, decoded_real)])),
        "psnr_noise": float(np.mean([psnr(a, b) for a, b in zip(noise, decoded_noise)])),
        "bpp": bpp,
        "decoded": list(decoded_real) + decoded_noise,
    }


def code_size(width: int, height: int, frame_width: int) -> int:
    """Values in the latent of one frame of size (height, frame_width)."""
    return width * -(-height // SWEEP_STRIDE) * -(-frame_width // SWEEP_STRIDE)


def sweep_widths(config: SweepConfig) -> SweepResult:
    """Train every width of ``config.widths`` and measure code size and PSNR on real and noise frames."""
    if not config.widths or min(config.widths) < 1:
        raise ValueError(f"widths must be positive latent channel counts, got {config.widths}")
    if config.lmbda is not None and config.lmbda <= 0:
        raise ValueError(f"lmbda must be positive, or omitted to train without a rate term; got {config.lmbda}")
    set_threads(config.threads)
    clips = load_clips([Path(v) for v in config.videos], max_frames=config.max_frames)
    real = evaluation_frames(clips, config.eval_frames)
    noise = noise_images([frame.shape for frame in real], config.seed)
    input_values = int(np.mean([frame.size for frame in real]))

    rows, reconstructions = [], {}
    for latent_channels in sorted(set(config.widths)):
        started = time.perf_counter()
        model = train_width(latent_channels, clips, config)
        seconds = time.perf_counter() - started
        measured = evaluate_width(model, real, noise)
        values = int(np.mean([code_size(latent_channels, *frame.shape[:2]) for frame in real]))
        row = SweepRow(
            width=latent_channels,
            model=NETWORK,
            rate_term=config.lmbda is not None,
            code_values=values,
            input_values=input_values,
            code_to_input=values / input_values,
            psnr_real=measured["psnr_real"],
            psnr_noise=measured["psnr_noise"],
            bpp=measured["bpp"],
            train_seconds=seconds,
        )
        logger.info(
            "width %d: %d values (%.3f of the input), %.2f dB on frames, %.2f dB on noise",
            latent_channels, values, row.code_to_input, row.psnr_real, row.psnr_noise,
        )
        rows.append(row)
        reconstructions[latent_channels] = measured["decoded"]
    linear_rows = linear_optimum_rows(clips, real, noise, config.widths) if config.lmbda is None else []
    return SweepResult(rows=rows, reconstructions=reconstructions, inputs=real + noise, linear_rows=linear_rows)


def linear_optimum_rows(clips: list[Clip], real: list[np.ndarray], noise: list[np.ndarray],
                        widths: list[int]) -> list[SweepRow]:
    """Measure the closed-form optimal linear autoencoder at every width on the same frames and noise."""
    started = time.perf_counter()
    fit_frames = [frame for clip in clips for frame in clip.train[:: max(1, len(clip.train) // LINEAR_FIT_FRAMES)]]
    linear = LinearAutoencoder.fit(fit_frames, SWEEP_STRIDE)
    seconds = time.perf_counter() - started
    input_values = int(np.mean([frame.size for frame in real]))
    rows = []
    for width in sorted(set(widths)):
        values = int(np.mean([code_size(width, *frame.shape[:2]) for frame in real]))
        rows.append(SweepRow(
            width=width, model=LINEAR_OPTIMUM, rate_term=False, code_values=values, input_values=input_values,
            code_to_input=values / input_values,
            psnr_real=float(np.mean([psnr(frame, linear.reconstruct(frame, width)) for frame in real])),
            psnr_noise=float(np.mean([psnr(image, linear.reconstruct(image, width)) for image in noise])),
            bpp=None, train_seconds=seconds,
        ))
    return rows


def comparison_image(result: SweepResult, frames: int = 2, max_side: int = 128) -> np.ndarray:
    """Lay out inputs and their reconstructions: rows are real frames then one noise image, columns are widths.

    Every cell is resized to the size of the first input after fitting it to ``max_side``.
    """
    real_count = len(result.inputs) // 2
    # Spread the real frames over the list, so that with several videos each shows up.
    picks = sorted(set(np.linspace(0, real_count - 1, min(frames, real_count)).round().astype(int))) + [real_count]
    widths = [row.width for row in result.rows]
    cell_h, cell_w = fit_max_side(result.inputs[0], max_side).shape[:2]

    def cell(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, (cell_w, cell_h), interpolation=cv2.INTER_AREA)

    cells = []
    for index in picks:
        cells.append(cell(result.inputs[index]))
        cells.extend(cell(result.reconstructions[w][index]) for w in widths)
    captions = ["input"] + [f"M={row.width} ({row.code_to_input:.2g}x)" for row in result.rows]
    columns = len(widths) + 1
    header = tile([label_strip(text, cell_w) for text in captions], columns)
    return np.concatenate([header, tile(cells, columns)], axis=0)


def _plot_linear_optimum(axis, rows: list[SweepRow]) -> None:
    """Add the linear optimum's curves, with exact copies (infinite PSNR) drawn at the top of the axis."""
    if not rows:
        return
    finite = [value for row in rows for value in (row.psnr_real, row.psnr_noise) if np.isfinite(value)]
    ceiling = max(finite, default=40.0) + 5.0
    ratios = [row.code_to_input for row in rows]
    for key, style, label in (("psnr_real", "o:", "frames, linear optimum"), ("psnr_noise", "s:", "noise, linear optimum")):
        values = [min(getattr(row, key), ceiling) for row in rows]
        axis.plot(ratios, values, style, color="gray", label=label)
    axis.annotate("exact copy", (ratios[-1], ceiling), fontsize=7, xytext=(-40, -10), textcoords="offset points")


def plot_sweep(rows: list[SweepRow], path: Path, linear_rows: list[SweepRow] = ()) -> Path:
    plt = pyplot()
    with_rate = rows[0].bpp is not None
    figure, axes = plt.subplots(1, 2 if with_rate else 1, figsize=(9 if with_rate else 5, 3.6), squeeze=False)
    ratios = [row.code_to_input for row in rows]
    axis = axes[0][0]
    axis.plot(ratios, [row.psnr_real for row in rows], "o-", label="frames, trained network")
    axis.plot(ratios, [row.psnr_noise for row in rows], "s--", label="noise, trained network")
    _plot_linear_optimum(axis, linear_rows)
    axis.axvline(1.0, color="gray", linewidth=0.8, linestyle=":")
    axis.set_xscale("log")
    axis.set_xlabel("code values / input values")
    axis.set_ylabel("PSNR (dB)")
    axis.set_title("rate term" if with_rate else "no rate term")
    axis.legend(fontsize="small")
    for row in rows:
        axis.annotate(str(row.width), (row.code_to_input, row.psnr_real), fontsize=7, xytext=(2, 3),
                      textcoords="offset points")
    if with_rate:
        axis = axes[0][1]
        axis.plot([row.bpp for row in rows], [row.psnr_real for row in rows], "o-")
        for row in rows:
            axis.annotate(str(row.width), (row.bpp, row.psnr_real), fontsize=7, xytext=(2, 3),
                          textcoords="offset points")
        axis.set_xlabel("measured bpp (range-coded bytes)")
        axis.set_ylabel("PSNR (dB), held-out frames")
    return save_figure(figure, path)


def write_outputs(result: SweepResult, out: Path, prefix: str = "sweep") -> dict[str, Path]:
    out = Path(out)
    rows = [asdict(row) for row in result.rows + result.linear_rows]
    markdown, data = write_table(rows, out / prefix, title="Bottleneck sweep")
    return {
        "table": markdown,
        "json": data,
        "plot": plot_sweep(result.rows, out / f"{prefix}_psnr.png", result.linear_rows),
        "image": write_png(comparison_image(result), out / f"{prefix}_reconstructions.png"),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SweepConfig(videos=[])
    parser.add_argument("videos", nargs="+", help="video files; the last 10%% of each is held out for evaluation")
    parser.add_argument("--out", default=defaults.out, help="folder for the table, plot and image")
    parser.add_argument("--widths", type=int, nargs="+", default=defaults.widths,
                        help="latent channel counts; 48 channels hold as many values as the input")
    parser.add_argument("--lmbda", type=float, default=None,
                        help="train with the rate term (MSE weight against bpp) and measure bytes; omit for none")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps per width")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="crops per step")
    parser.add_argument("--crop", type=int, default=defaults.crop, help="crop side in pixels")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate (Adam)")
    parser.add_argument("--channels", type=int, default=defaults.channels, help="hidden channels of the autoencoder")
    parser.add_argument("--eval-frames", type=int, default=defaults.eval_frames, help="held-out frames per video")
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many frames per video")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")


def run(args: argparse.Namespace) -> None:
    fields = {key: getattr(args, key) for key in asdict(SweepConfig(videos=[])) if hasattr(args, key)}
    config = SweepConfig(**fields)
    result = sweep_widths(config)
    prefix = "sweep" if config.lmbda is None else f"sweep_rate{config.lmbda:g}"
    paths = write_outputs(result, Path(config.out), prefix)
    print(Path(paths["table"]).read_text())
