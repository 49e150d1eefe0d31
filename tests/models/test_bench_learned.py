"""latentcast points: torch encoder, player decoder, measured on a real clip."""

from __future__ import annotations

import numpy as np
import pytest

from latentcast.models.bench.clips import load_clip
from latentcast.models.bench.learned import run_latentcast
from latentcast.models.export import export_bundle
from latentcast.models.package import CodecPackage


@pytest.fixture()
def package(tiny_model, tmp_path) -> CodecPackage:
    bundle = export_bundle(tiny_model, tmp_path / "bundle", "tiny-test")
    return CodecPackage(model=tiny_model, bundle=bundle, model_id="tiny-test")


def test_latentcast_point_on_carphone(package, shared_data, tmp_path):
    clip = load_clip(shared_data / "carphone.mp4", max_frames=3)
    workdir = tmp_path / "work"
    workdir.mkdir()
    point = run_latentcast(package, clip, workdir, threads=1)
    assert point.codec == "latentcast"
    assert point.setting == "tiny-test"
    assert point.frames == 3
    assert point.bytes > 0
    assert point.bpp == pytest.approx(point.bytes * 8 / (176 * 144 * 3))
    assert np.isfinite(point.psnr)
    assert point.encode_fps > 0
    assert point.decode_fps > 0
    assert list(workdir.iterdir()) == []
