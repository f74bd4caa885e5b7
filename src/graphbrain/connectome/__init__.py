"""Connectome room: time series -> static FC, dynamic FC and graphs."""

from graphbrain.connectome.dynamic import dynamic_fc_cohort, n_windows, sliding_window_fc
from graphbrain.connectome.static import ConnectivityTransformer, vectorize_fc

__all__ = [
    "ConnectivityTransformer",
    "dynamic_fc_cohort",
    "n_windows",
    "sliding_window_fc",
    "vectorize_fc",
]
