"""Frame types: keyframe interval, scene cuts, and the reference shared with the decoder."""

import cv2
import numpy as np
import pytest

from latentcast.models.codec import load_model
from latentcast.models.data import to_tensor
from latentcast.models.gop import GopConfig, GopEncoder
from latentcast.models.levels import WEIGHTS_DIR
from latentcast_client.stream import PacketType
from latentcast_client.video import read_frames

I, P = PacketType.INTRA, PacketType.PREDICTED


def code_types(model, frames, config: GopConfig) -> list[PacketType]:
    coder = GopEncoder(model, config)
    return [coder.code(model.analyze(to_tensor(frame))[0], index).type for index, frame in enumerate(frames)]


def test_keyint_one_codes_keyframes_only(predictive_model, carphone_frames):
    assert code_types(predictive_model, carphone_frames[:4], GopConfig(keyint=1)) == [I, I, I, I]


def test_keyframes_at_interval(predictive_model, carphone_frames):
    types = code_types(predictive_model, carphone_frames[:7], GopConfig(keyint=3, scenecut=1.0))
    assert types == [I, P, P, I, P, P, I]


def test_model_without_tables_codes_keyframes_only(tiny_model, carphone_frames):
    assert code_types(tiny_model, carphone_frames[:3], GopConfig()) == [I, I, I]


@pytest.fixture(scope="module")
def trained_model():
    """The bundled level 1: scene cuts need a trained encoder, whose latent follows the picture."""
    return load_model(WEIGHTS_DIR / "quality-1.safetensors")


@pytest.fixture(scope="module")
def cut_clip(carphone_frames, clip_dir) -> list[np.ndarray]:
    """Three carphone frames, then two foreman frames scaled to carphone's size: a cut before frame 3."""
    other = [cv2.resize(frame, (176, 144), interpolation=cv2.INTER_AREA)
             for frame in read_frames(clip_dir / "foreman.264", limit=2)]
    return carphone_frames[:3] + other


def test_scene_cut_starts_keyframe(trained_model, cut_clip):
    assert code_types(trained_model, cut_clip, GopConfig(keyint=60)) == [I, P, P, I, P]


def test_scene_cut_is_counted(trained_model, cut_clip):
    coder = GopEncoder(trained_model, GopConfig(keyint=60))
    for index, frame in enumerate(cut_clip):
        coder.code(trained_model.analyze(to_tensor(frame))[0], index)
    assert coder.scene_cuts == 1


def test_coded_latent_is_reference_for_next_frame(predictive_model, carphone_frames):
    coder = GopEncoder(predictive_model, GopConfig(keyint=60, scenecut=1.0))
    coded = [coder.code(predictive_model.analyze(to_tensor(frame))[0], index)
             for index, frame in enumerate(carphone_frames[:3])]
    np.testing.assert_array_equal(coder.reference.latent, coded[-1].latent)


def test_p_frame_payload_decodes_to_its_latent(predictive_model, carphone_frames):
    coder = GopEncoder(predictive_model, GopConfig(keyint=60, scenecut=1.0))
    first = coder.code(predictive_model.analyze(to_tensor(carphone_frames[0]))[0], 0)
    second = coder.code(predictive_model.analyze(to_tensor(carphone_frames[1]))[0], 1)
    residual = predictive_model.inter_coder.decode(second.payload, np.zeros_like(first.latent))
    np.testing.assert_array_equal(first.latent + residual, second.latent)


@pytest.mark.parametrize("keyint", [0, -3])
def test_config_rejects_bad_keyint(keyint):
    with pytest.raises(ValueError, match="invalid keyframe interval"):
        GopConfig(keyint=keyint)


@pytest.mark.parametrize("scenecut", [0.0, 1.5])
def test_config_rejects_bad_scenecut(scenecut):
    with pytest.raises(ValueError, match="invalid scene-cut ratio"):
        GopConfig(scenecut=scenecut)
