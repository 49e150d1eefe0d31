"""Semi-supervised classification: pretrain an autoencoder without labels, classify with few.

1. An autoencoder is trained on every training image, without labels (MSE, no rate term).
2. Its decoder is dropped; a small classifier (one hidden layer, or linear) reads the
   encoder's flattened latent, standardized with statistics of the unlabelled images.
3. With ``n`` labelled images per class, three methods are trained and tested:
   - ``frozen``: the encoder is fixed and only the classifier learns;
   - ``finetune``: starts from the frozen result and trains encoder and classifier
     together at a lower learning rate for a few iterations;
   - ``pixels``: the same classifier on the raw pixels.
   Each keeps the weights of the iteration with the best accuracy on a separate
   validation set (early stopping). The validation labels are extra labelled
   data, the same for every method.

Datasets: scikit-learn's handwritten digits (8x8, grey, 10 classes), and video
frames labelled by their source clip. Each frame gives one random 64x64 crop
after its shorter side is resized to 128. Frames are split in time, so that test
frames come after every training frame of their clip.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from latentcast.models.analysis.common import pyplot, random_crop, read_source, resize_shorter_side, save_figure
from latentcast.models.analysis.common import set_threads, to_batch, write_table
from latentcast.models.transforms import Decoder, Encoder

logger = logging.getLogger(__name__)

METHODS = ("frozen", "finetune", "pixels")


@dataclass
class LabelledData:
    """Images (N, C, H, W) in [0, 1] with integer labels, and index arrays of the three splits."""

    name: str
    images: torch.Tensor
    labels: np.ndarray
    classes: list[str]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class SemisupConfig:
    labels_per_class: list[int] = field(default_factory=lambda: [1, 5, 10, 50])
    seeds: int = 5
    pretrain_steps: int = 1000
    pretrain_batch: int = 32
    pretrain_lr: float = 2e-3
    hidden: int = 64
    head_iterations: int = 300
    head_lr: float = 3e-3
    finetune_iterations: int = 30
    finetune_lr: float = 1e-3
    eval_every: int = 5
    weight_decay: float = 1e-4


@dataclass
class Score:
    dataset: str
    method: str
    labels_per_class: int
    seed: int
    accuracy: float


# --- data ---------------------------------------------------------------------------


def load_digits_data(val_per_class: int = 10, test_fraction: float = 0.3, seed: int = 0) -> LabelledData:
    """Load scikit-learn's 1797 digits as (N, 1, 8, 8) in [0, 1], split at random per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test_count = int(round(len(members) * test_fraction))
        test.extend(members[:test_count])
        val.extend(members[test_count : test_count + val_per_class])
        train.extend(members[test_count + val_per_class :])
    return LabelledData("digits", images, labels, [str(c) for c in range(10)],
                        np.sort(train), np.sort(val), np.sort(test))


def load_frames_data(videos: list[Path], side: int = 64, scale: int = 128, every: int = 1,
                     max_frames: int | None = None, seed: int = 0) -> LabelledData:
    """Frames of each video, labelled by the video, as one random ``side`` x ``side`` crop per frame.

    Each frame is first resized so its shorter side is ``scale`` pixels, so a crop
    shows part of the scene rather than all of it. Per video, the first 60% of the
    frames are for training, 65-75% for validation and the last 20% for testing.
    The gaps keep near-identical neighbouring frames out of different splits.
    """
    if len(videos) < 2:
        raise ValueError(f"frame classification needs at least 2 videos (one class each), got {len(videos)}")
    if scale < side:
        raise ValueError(f"scale ({scale}) must be at least the crop side ({side})")
    rng = np.random.default_rng(seed)
    images, labels, train, val, test = [], [], [], [], []
    for label, video in enumerate(videos):
        frames = [random_crop(resize_shorter_side(frame, scale), side, rng)
                  for frame in read_source(video, max_frames=max_frames, every=every)]
        count = len(frames)
        if count < 10:
            raise ValueError(f"{video} has {count} frames after --every; the split needs at least 10")
        start = len(images)
        train.extend(range(start, start + int(0.6 * count)))
        val.extend(range(start + int(0.65 * count), start + int(0.75 * count)))
        test.extend(range(start + int(0.8 * count), start + count))
        images.extend(frames)
        labels.extend([label] * count)
    return LabelledData("frames", to_batch(images), np.asarray(labels, dtype=np.int64),
                        [Path(v).stem for v in videos], np.asarray(train), np.asarray(val), np.asarray(test))


# --- models -------------------------------------------------------------------------


class DigitsAutoencoder(nn.Module):
    """Small convolutional autoencoder for 8x8 images: (B, 1, 8, 8) -> latent (B, latent) -> (B, 1, 8, 8)."""

    def __init__(self, latent: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # (B, 32, 4, 4)
            nn.Flatten(), nn.Linear(32 * 4 * 4, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 32 * 4 * 4), nn.ReLU(), nn.Unflatten(1, (32, 4, 4)),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),  # (B, 16, 8, 8)
            nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class FramesAutoencoder(nn.Module):
    """The codec's transforms, narrowed: 64x64 RGB -> latent (B, M, 4, 4) -> 64x64 RGB; no entropy model."""

    def __init__(self, latent_channels: int = 16, channels: int = 32):
        super().__init__()
        self.encoder = Encoder(latent_channels, channels)
        self.decoder = Decoder(latent_channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def make_autoencoder(data: LabelledData) -> nn.Module:
    return DigitsAutoencoder() if data.name == "digits" else FramesAutoencoder()


class Standardize(nn.Module):
    """Fixed per-feature affine map (x - mean) / std on flattened input."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std.clamp_min(1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.mean) / self.std


def make_classifier(features: int, classes: int, hidden: int) -> nn.Module:
    """Linear classifier when ``hidden`` is 0, otherwise one hidden ReLU layer."""
    if hidden == 0:
        return nn.Linear(features, classes)
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes))


# --- training -----------------------------------------------------------------------


def pretrain(autoencoder: nn.Module, images: torch.Tensor, config: SemisupConfig, seed: int = 0) -> float:
    """Train the autoencoder on unlabelled images (MSE, random horizontal flips); return the final MSE."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=config.pretrain_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, config.pretrain_steps))
    autoencoder.train()
    smoothed = None
    progress = tqdm(range(config.pretrain_steps), desc="pretrain", unit="step", leave=False, dynamic_ncols=True)
    for _ in progress:
        batch = images[torch.randint(len(images), (config.pretrain_batch,), generator=generator)]
        flip = torch.rand(len(batch), generator=generator) < 0.5
        batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)
        loss = F.mse_loss(autoencoder(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        smoothed = loss.item() if smoothed is None else 0.95 * smoothed + 0.05 * loss.item()
        progress.set_postfix(mse=f"{smoothed:.5f}")
    autoencoder.eval()
    return float(smoothed or 0.0)


def draw_labelled(labels: np.ndarray, pool: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` random indices of each class from ``pool``."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels[pool]):
        members = pool[labels[pool] == label]
        if len(members) < per_class:
            raise ValueError(f"class {label} has {len(members)} training images; {per_class} labels per class "
                             "cannot be drawn. Lower --labels or use more frames.")
        chosen.extend(rng.choice(members, per_class, replace=False))
    return np.asarray(chosen)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(images), batch):
        correct += (model(images[start : start + batch]).argmax(dim=1) == labels[start : start + batch]).sum().item()
    return correct / len(images)


def fit_early_stopping(model: nn.Module, parameters, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor,
                       y_val: torch.Tensor, iterations: int, lr: float, config: SemisupConfig) -> nn.Module:
    """Full-batch Adam; keep the weights with the best validation accuracy, checked every ``eval_every`` iterations.

    The weights before the first iteration are a candidate too, so a run never
    ends worse on validation than it started.
    """
    optimizer = torch.optim.Adam(parameters, lr=lr, weight_decay=config.weight_decay)
    best_accuracy, best_state = accuracy(model, x_val, y_val), copy.deepcopy(model.state_dict())
    for iteration in range(1, iterations + 1):
        model.train()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if iteration % config.eval_every == 0 or iteration == iterations:
            score = accuracy(model, x_val, y_val)
            if score > best_accuracy:
                best_accuracy, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval()


def feature_statistics(module: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        features = torch.cat([module(images[i : i + 256]).flatten(1) for i in range(0, len(images), 256)])
    return features.mean(dim=0), features.std(dim=0)


def evaluate_seed(data: LabelledData, encoder: nn.Module, per_class: int, seed: int,
                  config: SemisupConfig) -> list[Score]:
    """Train and test the three methods on one draw of ``per_class`` labels per class."""
    labels = torch.from_numpy(data.labels)
    chosen = draw_labelled(data.labels, data.train, per_class, seed)
    x, y = data.images[chosen], labels[chosen]
    x_val, y_val = data.images[data.val], labels[data.val]
    x_test, y_test = data.images[data.test], labels[data.test]
    classes = len(data.classes)
    unlabelled = data.images[data.train]
    scores = []

    encoder = copy.deepcopy(encoder)
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    mean, std = feature_statistics(encoder, unlabelled)
    torch.manual_seed(seed)
    head = make_classifier(mean.numel(), classes, config.hidden)
    model = nn.Sequential(encoder, Standardize(mean, std), head)
    fit_early_stopping(model, head.parameters(), x, y, x_val, y_val, config.head_iterations, config.head_lr, config)
    scores.append(Score(data.name, "frozen", per_class, seed, accuracy(model, x_test, y_test)))

    for parameter in encoder.parameters():
        parameter.requires_grad_(True)
    fit_early_stopping(model, model.parameters(), x, y, x_val, y_val, config.finetune_iterations,
                       config.finetune_lr, config)
    scores.append(Score(data.name, "finetune", per_class, seed, accuracy(model, x_test, y_test)))

    mean, std = feature_statistics(nn.Identity(), unlabelled)
    torch.manual_seed(seed)
    head = make_classifier(mean.numel(), classes, config.hidden)
    model = nn.Sequential(Standardize(mean, std), head)
    fit_early_stopping(model, head.parameters(), x, y, x_val, y_val, config.head_iterations, config.head_lr, config)
    scores.append(Score(data.name, "pixels", per_class, seed, accuracy(model, x_test, y_test)))
    return scores


@dataclass
class SemisupResult:
    dataset: str
    pretrain_mse: float
    scores: list[Score]

    def summary(self) -> list[dict]:
        """Mean and standard deviation of test accuracy per method and labels per class."""
        rows = []
        for per_class in sorted({s.labels_per_class for s in self.scores}):
            row: dict = {"dataset": self.dataset, "labels_per_class": per_class}
            for method in METHODS:
                values = [s.accuracy for s in self.scores if s.method == method and s.labels_per_class == per_class]
                row[f"{method}_mean"] = float(np.mean(values))
                row[f"{method}_std"] = float(np.std(values))
            rows.append(row)
        return rows


def semisup_experiment(data: LabelledData, config: SemisupConfig = SemisupConfig()) -> SemisupResult:
    """Pretrain an autoencoder on the training split, then score every method, label count and seed."""
    if config.seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {config.seeds}")
    autoencoder = make_autoencoder(data)
    mse = pretrain(autoencoder, data.images[data.train], config)
    logger.info("%s: pretrained autoencoder, MSE %.5f on training images", data.name, mse)
    scores = []
    runs = [(n, seed) for n in config.labels_per_class for seed in range(config.seeds)]
    for per_class, seed in tqdm(runs, desc=f"{data.name} classifiers", unit="run", leave=False, dynamic_ncols=True):
        scores.extend(evaluate_seed(data, autoencoder.encoder, per_class, seed, config))
    result = SemisupResult(data.name, mse, scores)
    for row in result.summary():
        logger.info("%s, %d labels per class: %s", data.name, row["labels_per_class"],
                    ", ".join(f"{m} {row[f'{m}_mean']:.3f}" for m in METHODS))
    return result


# --- output -------------------------------------------------------------------------


def plot_accuracy(results: list[SemisupResult], path: Path) -> Path:
    plt = pyplot()
    figure, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.6), squeeze=False)
    for axis, result in zip(axes[0], results):
        rows = result.summary()
        counts = [row["labels_per_class"] for row in rows]
        for method, style in zip(METHODS, ("o-", "s-", "^--")):
            axis.errorbar(counts, [row[f"{method}_mean"] for row in rows], yerr=[row[f"{method}_std"] for row in rows],
                          fmt=style, capsize=3, label=method)
        axis.set_xscale("log")
        axis.set_xticks(counts, [str(c) for c in counts])
        axis.set_xlabel("labels per class")
        axis.set_ylabel("test accuracy")
        seeds = len({s.seed for s in result.scores})
        axis.set_title(f"{result.dataset} (mean and std over {seeds} seeds)", fontsize=9)
        axis.legend(fontsize=8)
    return save_figure(figure, path)


def write_outputs(results: list[SemisupResult], out: Path) -> dict[str, Path]:
    out = Path(out)
    rows = [row for result in results for row in result.summary()]
    markdown, summary = write_table(rows, out / "semisup", title="Test accuracy with few labels")
    scores = out / "semisup_scores.json"
    scores.write_text(json.dumps(
        {r.dataset: {"pretrain_mse": r.pretrain_mse, "scores": [asdict(s) for s in r.scores]} for r in results},
        indent=2) + "\n")
    return {"table": markdown, "json": summary, "scores": scores, "plot": plot_accuracy(results, out / "semisup.png")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SemisupConfig()
    parser.add_argument("--datasets", nargs="+", choices=("digits", "frames"), default=["digits", "frames"],
                        help="digits: scikit-learn's 8x8 digits; frames: video frames labelled by source clip")
    parser.add_argument("--videos", type=Path, nargs="+", default=[],
                        help="video files for the frames dataset, one class each")
    parser.add_argument("--every", type=int, default=1, help="keep one frame in EVERY of each video")
    parser.add_argument("--out", type=Path, default=Path("runs/semisup"), help="folder for the table and plot")
    parser.add_argument("--labels", type=int, nargs="+", default=defaults.labels_per_class,
                        help="labels per class to try")
    parser.add_argument("--seeds", type=int, default=defaults.seeds, help="label draws per label count")
    parser.add_argument("--pretrain-steps", type=int, default=defaults.pretrain_steps, help="autoencoder steps")
    parser.add_argument("--hidden", type=int, default=defaults.hidden,
                        help="hidden units of the classifier; 0 for a linear classifier")
    parser.add_argument("--finetune-iterations", type=int, default=defaults.finetune_iterations,
                        help="most full-batch iterations of fine-tuning")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")


def run(args: argparse.Namespace) -> None:
    set_threads(args.threads)
    if "frames" in args.datasets and not args.videos:
        raise ValueError("the frames dataset needs --videos (two or more video files, one class each)")
    config = SemisupConfig(labels_per_class=args.labels, seeds=args.seeds, pretrain_steps=args.pretrain_steps,
                           hidden=args.hidden, finetune_iterations=args.finetune_iterations)
    results = []
    for name in args.datasets:
        data = load_digits_data() if name == "digits" else load_frames_data(args.videos, every=args.every)
        results.append(semisup_experiment(data, config))
    paths = write_outputs(results, args.out)
    print(Path(paths["table"]).read_text())
