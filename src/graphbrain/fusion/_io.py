"""Reading a saved fusion-room model folder: JSON + safetensors, checked before parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file as load_torch

from graphbrain.errors import ConfigError
from graphbrain.training.estimator import (
    CLASSIFIER_FILE,
    check_safetensors,
    read_arrays,
    read_json_file,
)


def read_saved(directory: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """``(classifier.json, arrays.safetensors, weights.safetensors)`` of a ``kind`` model folder.

    Both safetensors files are checked first (pickles, ``torch.save`` archives and
    truncated files are refused by name); nothing is unpickled.
    """
    d = Path(directory)
    meta = read_json_file(d / CLASSIFIER_FILE)
    if meta.get("type") != kind:
        raise ConfigError(f"{d / CLASSIFIER_FILE}: not a {kind} classifier (type={meta.get('type')!r})")
    arrays = read_arrays(d / "arrays.safetensors")
    check_safetensors(d / "weights.safetensors")
    return meta, arrays, load_torch(str(d / "weights.safetensors"))
