import numpy as np
import pytest
import torch

from latentcast.models.entropy import FactorizedDensity, to_frequencies, quantize
from latentcast_client.entropy import FREQUENCY_BITS


def test_likelihoods_are_probabilities():
    likelihoods = FactorizedDensity(4)(torch.randn(2, 4, 3, 3) * 3)
    assert torch.all(likelihoods > 0)
    assert torch.all(likelihoods <= 1)


def test_pmf_over_integers_sums_to_one():
    density = FactorizedDensity(3)
    grid = torch.arange(-200, 201, dtype=torch.float32).view(1, 1, -1, 1).expand(1, 3, -1, 1)
    totals = density(grid).sum(dim=(0, 2, 3))
    assert torch.allclose(totals, torch.ones(3), atol=1e-4)


def test_frequency_tables_sum_to_table_precision():
    tables = FactorizedDensity(5).frequency_tables()
    assert all(sum(row) == 1 << FREQUENCY_BITS for row in tables.frequencies)


def test_frequency_tables_give_every_symbol_nonzero_frequency():
    tables = FactorizedDensity(5).frequency_tables()
    assert min(min(row) for row in tables.frequencies) >= 1


def test_frequency_tables_cover_the_mode():
    tables = FactorizedDensity(2).frequency_tables()
    for offset, row in zip(tables.offsets, tables.frequencies):
        assert offset <= 0 < offset + len(row)


def test_to_frequencies_rejects_too_many_symbols():
    with pytest.raises(ValueError, match="more than"):
        to_frequencies(np.ones(1 << FREQUENCY_BITS))


def test_quantize_round_gives_integers():
    values = quantize(torch.tensor([0.4, 0.6, -1.5]), "round")
    assert torch.equal(values, torch.tensor([0.0, 1.0, -2.0]))


def test_quantize_noise_stays_within_half():
    y = torch.zeros(1000)
    assert quantize(y, "noise").abs().max() <= 0.5


def test_quantize_ste_passes_gradient():
    y = torch.tensor([0.3, 1.7], requires_grad=True)
    quantize(y, "ste").sum().backward()
    assert torch.equal(y.grad, torch.ones(2))


def test_quantize_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown quantization mode"):
        quantize(torch.zeros(1), "floor")
