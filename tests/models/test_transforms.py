import pytest
import torch

from latentcast.models.transforms import GDN, STRIDE, Decoder, Encoder, pad_to_stride


@pytest.mark.parametrize("height,width", [(144, 176), (240, 432), (32, 48)])
def test_encoder_reduces_resolution_by_stride(height, width):
    latent = Encoder(latent_channels=8, channels=16)(torch.rand(1, 3, height, width))
    assert latent.shape == (1, 8, height // STRIDE, width // STRIDE)


def test_decoder_restores_resolution():
    frame = Decoder(latent_channels=8, channels=16)(torch.rand(2, 8, 3, 5))
    assert frame.shape == (2, 3, 3 * STRIDE, 5 * STRIDE)


def test_pad_to_stride_pads_odd_size_to_multiple():
    padded = pad_to_stride(torch.rand(1, 3, 144, 426))
    assert padded.shape[-2:] == (144, 432)


def test_pad_to_stride_replicates_last_column():
    frame = torch.rand(1, 3, 16, 17)
    padded = pad_to_stride(frame)
    assert torch.equal(padded[..., -1], frame[..., -1])


def test_pad_to_stride_keeps_aligned_frame():
    frame = torch.rand(1, 3, 32, 64)
    assert pad_to_stride(frame) is frame


def test_gdn_divides_and_igdn_multiplies():
    x = torch.full((1, 4, 2, 2), 2.0)
    forward = GDN(4)(x)
    inverse = GDN(4, inverse=True)(x)
    assert torch.all(forward.abs() < x.abs())
    assert torch.all(inverse.abs() > forward.abs())
