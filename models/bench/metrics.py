"""Figures quoted from rate-distortion curves: BD-rate, PSNR at a given bpp, compression ratios."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latentcast.models.bench.results import BenchError

RAW_RGB_BPP = 24.0
MIN_BD_POINTS = 4
BD_METHODS = ("akima", "pchip")


@dataclass(frozen=True)
class Curve:
    """Rate-distortion points sorted by bpp, PSNR strictly increasing; ``dropped`` counts removed points."""

    bpp: tuple[float, ...]
    psnr: tuple[float, ...]
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.bpp)


def monotone_curve(bpp: Sequence[float], psnr: Sequence[float]) -> Curve:
    """Sort points by bpp and keep those whose PSNR beats every cheaper point.

    BD-rate interpolates log(bpp) as a function of PSNR, which needs PSNR to rise
    strictly with rate. A point that costs more bits for no gain is dominated and
    is dropped, as are points with infinite PSNR (lossless).
    """
    kept_bpp: list[float] = []
    kept_psnr: list[float] = []
    finite = [(rate, quality) for rate, quality in zip(bpp, psnr) if math.isfinite(quality) and rate > 0]
    for rate, quality in sorted(finite):
        if kept_psnr and quality <= kept_psnr[-1]:
            continue
        kept_bpp.append(rate)
        kept_psnr.append(quality)
    return Curve(bpp=tuple(kept_bpp), psnr=tuple(kept_psnr), dropped=len(bpp) - len(kept_bpp))


@dataclass(frozen=True)
class BDRate:
    """BD-rate of a test curve against an anchor: percent bits at equal PSNR (negative means fewer bits).

    ``percent`` is None when it cannot be computed; ``reason`` then gives the cause.
    ``overlap`` is the fraction of the joint PSNR range that both curves cover.
    """

    percent: float | None
    overlap: float
    reason: str = ""


def psnr_overlap(anchor: Curve, test: Curve) -> float:
    low = max(anchor.psnr[0], test.psnr[0])
    high = min(anchor.psnr[-1], test.psnr[-1])
    span = max(anchor.psnr[-1], test.psnr[-1]) - min(anchor.psnr[0], test.psnr[0])
    return max(high - low, 0.0) / span if span > 0 else 0.0


def bd_rate(anchor: Curve, test: Curve, method: str = "akima") -> BDRate:
    """BD-rate of ``test`` against ``anchor`` with the ``bjontegaard`` package, over the shared PSNR range."""
    if method not in BD_METHODS:
        raise ValueError(f"unknown BD-rate interpolation {method!r}; choose one of {', '.join(BD_METHODS)}")
    for curve, role in ((anchor, "anchor"), (test, "test")):
        if len(curve) < MIN_BD_POINTS:
            return BDRate(None, 0.0, f"{role} has {len(curve)} usable points, BD-rate needs {MIN_BD_POINTS}")
    overlap = psnr_overlap(anchor, test)
    if overlap == 0.0:
        return BDRate(None, 0.0, "the PSNR ranges do not overlap")
    try:
        import bjontegaard
    except ImportError as exc:
        raise BenchError(f"BD-rate needs the bjontegaard package ({exc}); install the bench extra: pip install -e '.[bench]'") from exc
    with warnings.catch_warnings():
        # The overlap is reported beside the value instead of as a warning.
        warnings.simplefilter("ignore")
        percent = bjontegaard.bd_rate(
            list(anchor.bpp), list(anchor.psnr), list(test.bpp), list(test.psnr),
            method=method, require_matching_points=False, min_overlap=0.0,
        )
    return BDRate(float(percent), overlap)


def psnr_at_bpp(bpp_points: Sequence[float], psnr_points: Sequence[float], bpp: float) -> float | None:
    """PSNR of the measured curve at ``bpp``, linear in log(bpp) between the points nearest in bpp.

    Returns None outside the measured bpp range: the curve is not extrapolated.
    Points with infinite PSNR (lossless) are left out.
    """
    points = sorted((rate, quality) for rate, quality in zip(bpp_points, psnr_points) if math.isfinite(quality))
    if not points or not points[0][0] <= bpp <= points[-1][0]:
        return None
    rates, qualities = zip(*points)
    return float(np.interp(math.log(bpp), np.log(rates), qualities))


def ratio_to_raw(bpp: float) -> float:
    """Compression ratio against uncompressed 8-bit RGB (24 bits per pixel)."""
    return RAW_RGB_BPP / bpp


def ratio_to_source(bpp: float, source_bpp: float) -> float:
    """Return the compression ratio against the source file, from the source's bpp over the whole file."""
    return source_bpp / bpp
