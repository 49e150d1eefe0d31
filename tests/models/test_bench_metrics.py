"""BD-rate, PSNR at a given bpp and compression ratios of the benchmark."""

from __future__ import annotations

import math

import pytest

from latentcast.models.bench.metrics import (
    BD_METHODS, bd_rate, monotone_curve, psnr_at_bpp, ratio_to_raw, ratio_to_source,
)

BPP = [0.05, 0.1, 0.2, 0.4, 0.8]
PSNR = [28.0, 30.5, 33.0, 35.2, 37.0]


@pytest.mark.parametrize("method", BD_METHODS)
def test_bd_rate_of_curve_against_itself_is_zero(method):
    curve = monotone_curve(BPP, PSNR)
    result = bd_rate(curve, curve, method)
    assert result.percent == pytest.approx(0.0, abs=1e-9)
    assert result.overlap == pytest.approx(1.0)


@pytest.mark.parametrize("method", BD_METHODS)
@pytest.mark.parametrize("factor", [0.8, 1.25, 0.5])
def test_bd_rate_of_scaled_rates_is_factor(method, factor):
    anchor = monotone_curve(BPP, PSNR)
    test = monotone_curve([rate * factor for rate in BPP], PSNR)
    assert bd_rate(anchor, test, method).percent == pytest.approx((factor - 1.0) * 100.0, abs=1e-6)


def test_bd_rate_needs_four_points():
    anchor = monotone_curve(BPP, PSNR)
    test = monotone_curve([0.3], [34.0])
    result = bd_rate(anchor, test)
    assert result.percent is None
    assert "needs 4" in result.reason


def test_bd_rate_without_overlap_gives_reason():
    anchor = monotone_curve(BPP, PSNR)
    test = monotone_curve(BPP, [value + 20.0 for value in PSNR])
    result = bd_rate(anchor, test)
    assert result.percent is None
    assert result.reason == "the PSNR ranges do not overlap"


def test_bd_rate_partial_overlap_is_reported():
    anchor = monotone_curve(BPP, PSNR)
    test = monotone_curve(BPP, [value + 4.5 for value in PSNR])
    result = bd_rate(anchor, test)
    assert result.percent is not None
    assert result.overlap == pytest.approx(4.5 / 13.5)


def test_bd_rate_rejects_unknown_method():
    curve = monotone_curve(BPP, PSNR)
    with pytest.raises(ValueError, match="unknown BD-rate interpolation 'spline'"):
        bd_rate(curve, curve, "spline")


def test_monotone_curve_drops_dominated_points():
    curve = monotone_curve([0.4, 0.1, 0.2, 0.3], [35.0, 30.0, 32.0, 31.5])
    assert curve.bpp == (0.1, 0.2, 0.4)
    assert curve.psnr == (30.0, 32.0, 35.0)
    assert curve.dropped == 1


def test_monotone_curve_drops_lossless_point():
    curve = monotone_curve([0.1, 0.2, 5.0], [30.0, 32.0, math.inf])
    assert curve.bpp == (0.1, 0.2)
    assert curve.dropped == 1


def test_psnr_at_bpp_is_linear_in_log_rate():
    # 0.2 lies halfway between 0.1 and 0.4 in log(bpp).
    assert psnr_at_bpp([0.4, 0.1], [34.0, 30.0], 0.2) == pytest.approx(32.0)


def test_psnr_at_bpp_at_measured_ends():
    assert psnr_at_bpp(BPP, PSNR, 0.05) == pytest.approx(28.0)
    assert psnr_at_bpp(BPP, PSNR, 0.8) == pytest.approx(37.0)


@pytest.mark.parametrize("bpp", [0.049, 0.81, 3.0])
def test_psnr_at_bpp_outside_range_is_none(bpp):
    assert psnr_at_bpp(BPP, PSNR, bpp) is None


def test_psnr_at_bpp_of_empty_curve_is_none():
    assert psnr_at_bpp([], [], 0.2) is None


def test_compression_ratios():
    assert ratio_to_raw(0.5) == pytest.approx(48.0)
    assert ratio_to_source(0.5, 1.5) == pytest.approx(3.0)
