import numpy as np
import pytest
import torch

from latentcast.models.data import CropSampler, load_clips, to_frame, to_tensor


def test_load_clips_holds_out_last_frames(clip_dir):
    (clip,) = load_clips([clip_dir / "carphone.mp4"], val_fraction=0.25, max_frames=20)
    assert len(clip.val) == 5
    assert len(clip.train) == 10


def test_load_clips_rejects_short_video(clip_dir):
    with pytest.raises(ValueError, match="at least 4"):
        load_clips([clip_dir / "carphone.mp4"], max_frames=3)


def test_crop_sampler_returns_unit_range_batch(clip_dir):
    clips = load_clips([clip_dir / "carphone.mp4"], max_frames=12)
    batch = CropSampler(clips, crop=64).batch(3)
    assert batch.shape == (3, 3, 64, 64)
    assert 0.0 <= float(batch.min())
    assert float(batch.max()) <= 1.0


def test_crop_sampler_rejects_crop_larger_than_frame(clip_dir):
    clips = load_clips([clip_dir / "carphone.mp4"], max_frames=12)
    with pytest.raises(ValueError, match="larger than the frames"):
        CropSampler(clips, crop=256)


def test_tensor_conversion_round_trips_uint8(carphone_frames):
    frame = carphone_frames[0]
    assert np.array_equal(to_frame(to_tensor(frame)[0]), frame)


def test_to_tensor_is_rgb_channels_first(carphone_frames):
    frame = carphone_frames[0]
    tensor = to_tensor(frame)
    assert torch.allclose(tensor[0, 0], torch.from_numpy(frame[..., 0]).float() / 255.0)
