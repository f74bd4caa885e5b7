"""connectome/ragged.py: error reasons a batch run records, integer lengths, and the dtype
of the window FC follows the input (kills mutants a sampled mutation run found alive)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphbrain.connectome.dynamic import sliding_window_fc
from graphbrain.connectome.ragged import pad_timeseries, ragged_window_fc
from graphbrain.errors import DataError


def _scans(lengths, r=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((t, r)) for t in lengths]


@pytest.mark.parametrize(("args", "kw", "reason", "words"), [
    ([[]], {}, "empty", "no scans"),
    ([[np.zeros((10, 4)), np.zeros((10, 5))]], {}, "roi_mismatch", "different numbers of ROIs [4, 5]"),
    ([[np.zeros((10, 4)), np.zeros((12, 4))]], {"length": 11}, "too_long", "shorter than the longest scan (12)"),
])
def test_pad_timeseries_errors_carry_a_reason_and_a_message(args, kw, reason, words):
    with pytest.raises(DataError) as err:
        pad_timeseries(*args, **kw)
    assert err.value.reason == reason and words in str(err.value)


def test_pad_lengths_are_int64_and_window_fc_follows_the_input_dtype():
    x, lengths = pad_timeseries(_scans([30, 22]))
    assert lengths.dtype == torch.int64 and lengths.tolist() == [30, 22]
    x64 = x.double()
    fc, mask = ragged_window_fc(x64, lengths, 10, 5)
    assert fc.dtype == torch.float64
    # each subject's windows equal the unpadded sliding-window FC of its own scan
    want = sliding_window_fc(x64[1, :22].numpy(), 10, 5)
    np.testing.assert_allclose(fc[1, : want.shape[0]].numpy(), want, atol=1e-6)
    assert mask[1].sum() == want.shape[0] and not mask[1, want.shape[0]:].any()


def test_too_many_windows_is_a_data_error_with_its_reason():
    x, lengths = pad_timeseries(_scans([60]))
    with pytest.raises(DataError) as err:
        ragged_window_fc(x, lengths, 10, 5, n_windows_max=3)
    assert err.value.reason == "too_long" and "more than the 3 allowed" in str(err.value)
