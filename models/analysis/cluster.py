"""Clustering of frames in latent space, and scene detection along one video.

Each frame is encoded with a codec's analysis transform, and its latent
(M, h, w) is pooled into one vector of 2M values: the mean and the standard
deviation of every channel over the positions. The pooled vector does not
depend on the frame size, so videos of different sizes share one space.
Features are standardized before k-means, PCA and distances, so no channel
dominates by its scale alone.

When several sources are given, the source of each frame is its label. The
clustering is scored against it with the adjusted Rand index (ARI) and
normalized mutual information (NMI). The same clustering of raw pixels (frames
downscaled to 16x16) is scored next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from latentcast.models.analysis.common import center_square, fit_max_side, label_strip, pyplot, read_source
from latentcast.models.analysis.common import save_figure, set_threads, tile, write_png
from latentcast.models.codec import FrameCodec, load_model
from latentcast.models.data import to_tensor
from latentcast.models.transforms import pad_to_stride

logger = logging.getLogger(__name__)


@dataclass
class FrameSet:
    """Frames of one or more sources.

    ``labels[i]`` indexes ``names``, and ``indices[i]`` is the frame number in that source.
    """

    frames: list[np.ndarray]
    labels: np.ndarray
    names: list[str]
    indices: np.ndarray


@dataclass
class Clustering:
    labels: np.ndarray
    k: int
    # Silhouette score of every k tried (empty when k was given).
    silhouette: dict[int, float] = field(default_factory=dict)


def load_frame_set(sources: list[Path], every: int = 1, max_frames: int | None = None,
                   max_side: int = 128) -> FrameSet:
    """Read every source (video file or image folder), keeping one frame in ``every``, downscaled to ``max_side``."""
    frames, labels, indices, names = [], [], [], []
    for label, source in enumerate(sources):
        source_frames = read_source(source, max_frames=max_frames, every=every)
        frames.extend(fit_max_side(frame, max_side) for frame in source_frames)
        labels.extend([label] * len(source_frames))
        indices.extend(range(0, len(source_frames) * every, every))
        names.append(Path(source).stem)
    return FrameSet(frames=frames, labels=np.asarray(labels), names=names, indices=np.asarray(indices))


@torch.no_grad()
def latent_vectors(model: FrameCodec, frames: list[np.ndarray]) -> np.ndarray:
    """Pooled latents (N, 2M): per channel, the mean and the standard deviation over positions.

    The float output of the analysis transform is pooled, before rounding. Frames
    whose size is not a multiple of the stride are padded as for coding.
    """
    model.eval()
    vectors = []
    for frame in tqdm(frames, desc="encode", unit="frame", leave=False, dynamic_ncols=True):
        y = model.g_a(pad_to_stride(to_tensor(frame)))[0]
        flat = y.reshape(y.shape[0], -1)
        vectors.append(torch.cat([flat.mean(dim=1), flat.std(dim=1, unbiased=False)]).numpy())
    return np.stack(vectors)


def pixel_vectors(frames: list[np.ndarray], side: int = 16) -> np.ndarray:
    """Resize each frame to side x side and flatten it to [0, 1] values (N, side * side * 3), the raw-pixel baseline."""
    small = [cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA) for frame in frames]
    return np.stack(small).reshape(len(frames), -1).astype(np.float32) / 255.0


def standardize(vectors: np.ndarray) -> np.ndarray:
    return StandardScaler().fit_transform(vectors)


def cluster_vectors(vectors: np.ndarray, k: int | None = None, k_range: tuple[int, int] = (2, 8),
                    seed: int = 0) -> Clustering:
    """k-means on standardized vectors; without ``k``, the k in ``k_range`` (inclusive) with the best silhouette."""
    samples = len(vectors)
    if k is not None:
        if not 1 <= k <= samples:
            raise ValueError(f"k must be between 1 and the number of frames ({samples}), got {k}")
        return Clustering(labels=_kmeans(standardize(vectors), k, seed), k=k)
    low, high = k_range
    high = min(high, samples - 1)
    if low < 2 or low > high:
        raise ValueError(f"k range {k_range} is invalid for {samples} frames; it needs 2 <= low <= high < frames")
    features = standardize(vectors)
    scores, labelings = {}, {}
    for candidate in range(low, high + 1):
        labelings[candidate] = _kmeans(features, candidate, seed)
        if len(set(labelings[candidate])) < 2:
            continue
        scores[candidate] = float(silhouette_score(features, labelings[candidate]))
    if not scores:
        raise ValueError("k-means found fewer than 2 distinct clusters for every k; the frames may be identical")
    best = max(scores, key=scores.get)
    logger.info("silhouette scores %s; chose k=%d", {k: round(s, 3) for k, s in scores.items()}, best)
    return Clustering(labels=labelings[best], k=best, silhouette=scores)


def _kmeans(features: np.ndarray, k: int, seed: int) -> np.ndarray:
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(features)


def agreement(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Adjusted Rand index and normalized mutual information of a clustering against labels."""
    return {
        "ari": float(adjusted_rand_score(truth, predicted)),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
    }


def project(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D projection (N, 2) of standardized vectors with PCA or t-SNE."""
    features = standardize(vectors)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        perplexity = min(30.0, max(2.0, (len(features) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)
    raise ValueError(f"unknown projection {method!r}; expected 'pca' or 'tsne'")


def find_scenes(latent_vectors: np.ndarray, min_length: int = 3, threshold: float | None = None,
                z: float = 6.0) -> list[tuple[int, int]]:
    """Split one video's frames into scenes at jumps between consecutive frame vectors.

    ``latent_vectors`` is (N, D), one row per frame in order. A gap between
    consecutive frames is a cut candidate where the distance of their
    standardized vectors exceeds ``threshold``. Without one, the threshold is the
    median distance plus ``z`` robust standard deviations. That deviation is
    1.4826 x the median absolute deviation, floored at half the mean distance so
    that near-duplicate frames do not turn every change into a cut. Candidates
    are taken largest first, skipping any that would leave a scene shorter than
    ``min_length`` frames. Returns half-open frame ranges [start, end) that
    cover all frames.
    """
    count = len(latent_vectors)
    if count == 0:
        return []
    if min_length < 1:
        raise ValueError(f"min_length must be at least 1, got {min_length}")
    if count == 1:
        return [(0, 1)]
    distances = consecutive_distances(latent_vectors)
    if threshold is None:
        median = float(np.median(distances))
        spread = 1.4826 * float(np.median(np.abs(distances - median)))
        threshold = median + z * max(spread, 0.5 * float(distances.mean()), 1e-9)
    cuts: list[int] = []
    for gap in np.argsort(-distances, kind="stable"):
        if distances[gap] <= threshold:
            break
        cut = int(gap) + 1
        bounds = sorted([0, count, *cuts, cut])
        if min(b - a for a, b in zip(bounds, bounds[1:])) >= min_length:
            cuts.append(cut)
    bounds = sorted([0, count, *cuts])
    return list(zip(bounds, bounds[1:]))


def consecutive_distances(vectors: np.ndarray) -> np.ndarray:
    """Euclidean distance between frame t and t + 1 after standardizing each feature over the video (N - 1,)."""
    features = np.asarray(vectors, dtype=np.float64)
    spread = features.std(axis=0)
    features = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return np.linalg.norm(np.diff(features, axis=0), axis=1)


def plot_projection(points: np.ndarray, clusters: np.ndarray, frame_set: FrameSet, path: Path,
                    title: str) -> Path:
    """Scatter plot of the projection: colour is the cluster, marker shape the source."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    markers = "osD^v<>Px*"
    colours = plt.get_cmap("tab10")
    for label, name in enumerate(frame_set.names):
        chosen = frame_set.labels == label
        axis.scatter(points[chosen, 0], points[chosen, 1], c=[colours(c % 10) for c in clusters[chosen]],
                     marker=markers[label % len(markers)], s=14, label=name, edgecolors="none")
    axis.set_title(title, fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])
    if len(frame_set.names) > 1:
        legend = axis.legend(fontsize=7, title="marker: source", title_fontsize=7)
        for handle in legend.legend_handles:
            handle.set_color("gray")
    return save_figure(figure, path)


def thumbnail_sheets(frame_set: FrameSet, clusters: np.ndarray, out: Path, per_sheet: int = 24,
                     thumb: int = 64, columns: int = 8) -> list[Path]:
    """Write one PNG per cluster with up to ``per_sheet`` thumbnails spread over its frames, captioned source:index."""
    members: dict[int, list[int]] = defaultdict(list)
    for index, cluster in enumerate(clusters):
        members[int(cluster)].append(index)
    paths = []
    for cluster, indices in sorted(members.items()):
        picks = np.linspace(0, len(indices) - 1, min(per_sheet, len(indices))).round().astype(int)
        cells = []
        for pick in sorted(set(picks)):
            index = indices[pick]
            caption = f"{frame_set.names[frame_set.labels[index]][:8]}:{frame_set.indices[index]}"
            image = center_square(frame_set.frames[index], thumb)
            cells.append(np.concatenate([label_strip(caption, thumb, 12), image], axis=0))
        paths.append(write_png(tile(cells, min(columns, len(cells))), Path(out) / f"cluster_{cluster}.png"))
    return paths


@dataclass
class ClusterReport:
    sources: list[str]
    frames: int
    k: int
    silhouette: dict[int, float]
    cluster_sizes: dict[int, int]
    # Against the source labels; present only when several sources are given.
    latent_scores: dict[str, float] | None = None
    pixel_scores: dict[str, float] | None = None
    scenes: list[tuple[int, int]] | None = None


def cluster_frames(model: FrameCodec, frame_set: FrameSet, k: int | None = None,
                   k_range: tuple[int, int] = (2, 8), seed: int = 0) -> tuple[ClusterReport, Clustering, np.ndarray]:
    """Cluster a frame set in latent space; score against the sources and against raw pixels when there are several."""
    vectors = latent_vectors(model, frame_set.frames)
    clustering = cluster_vectors(vectors, k, k_range, seed)
    sizes = {int(c): int((clustering.labels == c).sum()) for c in np.unique(clustering.labels)}
    report = ClusterReport(sources=frame_set.names, frames=len(frame_set.frames), k=clustering.k,
                           silhouette=clustering.silhouette, cluster_sizes=sizes)
    if len(frame_set.names) > 1:
        report.latent_scores = agreement(clustering.labels, frame_set.labels)
        pixel_clustering = cluster_vectors(pixel_vectors(frame_set.frames), clustering.k, seed=seed)
        report.pixel_scores = agreement(pixel_clustering.labels, frame_set.labels)
        logger.info("latent %s, raw pixels %s", report.latent_scores, report.pixel_scores)
    else:
        # Scene bounds as frame numbers of the source, which differ from positions when --every skips frames.
        indices = frame_set.indices
        report.scenes = [(int(indices[start]), int(indices[end - 1]) + 1) for start, end in find_scenes(vectors)]
    return report, clustering, vectors


def report_markdown(report: ClusterReport) -> str:
    lines = [f"# Frame clustering: {', '.join(report.sources)}", "",
             f"{report.frames} frames, k = {report.k}; cluster sizes {report.cluster_sizes}", ""]
    if report.silhouette:
        lines += ["| k | silhouette |", "|---|---|"]
        lines += [f"| {k} | {score:.3f} |" for k, score in report.silhouette.items()] + [""]
    if report.latent_scores is not None:
        lines += ["| features | ARI | NMI |", "|---|---|---|",
                  f"| pooled latents | {report.latent_scores['ari']:.3f} | {report.latent_scores['nmi']:.3f} |",
                  f"| raw pixels 16x16 | {report.pixel_scores['ari']:.3f} | {report.pixel_scores['nmi']:.3f} |", ""]
    if report.scenes is not None:
        lines += ["Scenes (frame ranges, end exclusive): " + ", ".join(f"[{a}, {b})" for a, b in report.scenes), ""]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", type=Path, nargs="+",
                        help="video files or image folders; with several, each source is a label")
    parser.add_argument("--model", type=Path, default=None, help="model .safetensors; default: the bundled model")
    parser.add_argument("--out", type=Path, default=Path("runs/cluster"), help="folder for report, plot and sheets")
    parser.add_argument("--k", type=int, default=None, help="number of clusters; default: best silhouette in the range")
    parser.add_argument("--k-range", type=int, nargs=2, default=(2, 8), metavar=("LOW", "HIGH"),
                        help="k values to try without --k (inclusive)")
    parser.add_argument("--every", type=int, default=1, help="keep one frame in EVERY")
    parser.add_argument("--max-frames", type=int, default=None, help="frames kept per source, at most")
    parser.add_argument("--max-side", type=int, default=128, help="downscale frames so the longer side fits (pixels)")
    parser.add_argument("--projection", choices=("pca", "tsne"), default="pca", help="2-D projection for the plot")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")


def run(args: argparse.Namespace) -> None:
    set_threads(args.threads)
    model = load_model(args.model)
    frame_set = load_frame_set(args.sources, args.every, args.max_frames, args.max_side)
    report, clustering, vectors = cluster_frames(model, frame_set, args.k, tuple(args.k_range), args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    points = project(vectors, args.projection, args.seed)
    plot_projection(points, clustering.labels, frame_set, out / "projection.png",
                    f"pooled latents, {args.projection.upper()}, colour: k-means cluster (k={report.k})")
    thumbnail_sheets(frame_set, clustering.labels, out / "clusters")
    (out / "report.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    (out / "report.md").write_text(report_markdown(report))
    print(report_markdown(report))
