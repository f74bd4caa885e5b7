"""Reading a saved fusion-room model folder: JSON + safetensors, checked before parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file as load_torch

from graphbrain.connectome.static import ConnectivityTransformer
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


def save_arrays(directory: Path, arrays: dict[str, Any], transformer: ConnectivityTransformer | None) -> Any:
    """Write ``arrays.safetensors`` (with the fitted connectome transformer's state under
    ``transformer.*``); returns the transformer's JSON parameters (``None`` without one)."""
    arrays = dict(arrays)
    params = None
    if transformer is not None:
        params, tarr = transformer.get_state()
        arrays.update({f"transformer.{k}": v for k, v in tarr.items()})
    save_numpy({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(Path(directory) / "arrays.safetensors"))
    return params


def restore_transformer(params: Any, arrays: dict[str, np.ndarray]) -> ConnectivityTransformer | None:
    """The connectome transformer :func:`save_arrays` stored, or ``None``."""
    if params is None:
        return None
    tarr = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("transformer.")}
    return ConnectivityTransformer.from_state(params, tarr)
