"""Trainer for the torch models: AdamW, warm-up + cosine schedule, early stopping.

One :class:`Trainer` fits one model on a training set and (optionally) an inner
validation set that the caller carved from the *training fold only*
(:func:`graphbrain.training.splits.inner_split`). Per epoch it logs the training loss
and the validation loss / accuracy / AUROC; it keeps the weights of the best
validation epoch (``monitor``, default ``val_auroc``; ties go to the lower validation
loss) and stops after ``patience`` epochs without improvement. Warm-up epochs are never
taken as the best epoch. ``val_loss`` is a poor monitor on small cohorts: an
over-confident model's loss rises from the first epochs while its ranking (AUROC) still
improves, so early stopping on it kept near-initial weights (ABIDE-PCP: chance AUROC).

    loss      = CE(logits, y; class weights w_c = N / (C N_c) when "balanced") + aux_loss
    lr(step)  = lr * (step + 1) / S_w                         during the warm-up steps S_w
              = lr * (1 + cos(pi (step - S_w) / (S - S_w))) / 2   afterwards (cosine to 0)

Devices: ``device="auto"`` takes CUDA when present, else CPU. Mixed precision
(``amp="bf16"`` or ``"fp16"``, the latter with a GradScaler) runs on CUDA only; on CPU
it falls back to float32 with a warning. Seeds (torch, numpy, random) are set from
``seed`` and deterministic algorithms are switched on for the duration of ``fit`` (and
restored afterwards), so two CPU runs with the same seed give the same weights.

Datasets are small objects with ``__len__``, ``labels``, ``ids`` and
``batch(index, *, train, rng, device) -> dict[str, Tensor]`` (:class:`TensorSet` for
precomputed inputs, :class:`DynamicFCSet` for sliding-window FC computed per batch on
the device, with STAGIN-style random crops while training).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from graphbrain.connectome.dynamic import n_windows as count_windows
from graphbrain.connectome.ragged import cover_crops, pad_timeseries, ragged_window_fc
from graphbrain.errors import ConfigError
from graphbrain.models.base import ModelOutput
from graphbrain.training import distributed

log = logging.getLogger(__name__)

TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 40,
    "batch_size": 16,
    "lr": 1e-3,
    "weight_decay": 1e-2,
    "warmup_epochs": 2,
    "patience": 10,
    "grad_clip": 1.0,
    "val_fraction": 0.2,
    "class_weight": "balanced",
    "device": "auto",
    "amp": "none",
    "num_threads": None,
    "progress": True,
    "log_dir": None,
    "monitor": "val_auroc",
    "crop_length": None,
    "crops_per_subject": 1,
}
MONITORS = ("val_loss", "val_auroc", "val_accuracy")


def train_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults merged with ``config``; unknown keys and bad values raise :class:`ConfigError`."""
    cfg = dict(config or {})
    unknown = sorted(set(cfg) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown train key(s) {unknown}; valid keys: {sorted(TRAIN_DEFAULTS)}")
    out = {**TRAIN_DEFAULTS, **cfg}
    for key in ("epochs", "batch_size"):
        if int(out[key]) < 1:
            raise ConfigError(f"train.{key} must be >= 1, got {out[key]}")
        out[key] = int(out[key])
    for key in ("warmup_epochs", "patience"):
        if int(out[key]) < 0:
            raise ConfigError(f"train.{key} must be >= 0, got {out[key]}")
        out[key] = int(out[key])
    for key in ("lr", "weight_decay"):
        out[key] = float(out[key])
    if out["lr"] <= 0:
        raise ConfigError(f"train.lr must be > 0, got {out['lr']}")
    if not 0.0 < float(out["val_fraction"]) < 1.0:
        raise ConfigError(f"train.val_fraction must be in (0, 1), got {out['val_fraction']}")
    if out["amp"] not in ("none", "bf16", "fp16", None):
        raise ConfigError(f"train.amp must be 'none', 'bf16' or 'fp16', got {out['amp']!r}")
    if str(out["device"]).split(":")[0] not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"train.device must be 'auto', 'cpu' or 'cuda[:N]', got {out['device']!r}")
    if out["monitor"] not in MONITORS:
        raise ConfigError(f"train.monitor must be one of {MONITORS}, got {out['monitor']!r}")
    if out["crop_length"] is not None:
        if int(out["crop_length"]) < 2:
            raise ConfigError(f"train.crop_length must be >= 2 time points or null, got {out['crop_length']}")
        out["crop_length"] = int(out["crop_length"])
    if int(out["crops_per_subject"]) < 1:
        raise ConfigError(f"train.crops_per_subject must be >= 1, got {out['crops_per_subject']}")
    out["crops_per_subject"] = int(out["crops_per_subject"])
    cw = out["class_weight"]
    if not (cw in (None, "none", "balanced") or isinstance(cw, list | tuple)):
        raise ConfigError(f"train.class_weight must be 'balanced', 'none' or a list, got {cw!r}")
    return out


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; asking for CUDA without one is an error."""
    name = name or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("train.device='cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic(enabled: bool = True, num_threads: int | None = None) -> Iterator[None]:
    """Deterministic algorithms (warn-only) and a thread count for a block; restored after."""
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    try:
        if enabled:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if num_threads:
            torch.set_num_threads(int(num_threads))
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.set_num_threads(prev_threads)


def class_weights(labels: np.ndarray, n_classes: int, spec: Any = "balanced") -> torch.Tensor | None:
    """``balanced``: ``N / (C N_c)`` from the training labels; a list is used as is."""
    if spec in (None, "none"):
        return None
    if spec == "balanced":
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
        w = len(labels) / (n_classes * np.maximum(counts, 1.0))
        return torch.as_tensor(w, dtype=torch.float32)
    w = np.asarray(spec, dtype=np.float32)
    if w.shape != (n_classes,):
        raise ConfigError(f"train.class_weight needs {n_classes} values, got {w.tolist()}")
    return torch.as_tensor(w)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


class Dataset(Protocol):
    ids: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int: ...

    def subset(self, index: np.ndarray) -> Dataset: ...

    def batch(
        self, index: np.ndarray, *, train: bool, rng: np.random.Generator, device: torch.device
    ) -> dict[str, torch.Tensor]: ...


class TensorSet:
    """Precomputed inputs: ``tensors[name]`` has one row per subject (e.g. ``"fc"`` ``(N, R, R)``)."""

    def __init__(self, tensors: dict[str, np.ndarray], labels: np.ndarray, ids: np.ndarray | None = None) -> None:
        self.tensors = {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in tensors.items()}
        self.labels = np.asarray(labels, dtype=np.int64)
        n = len(self.labels)
        self.ids = np.asarray(ids) if ids is not None else np.arange(n).astype(str)
        for k, v in self.tensors.items():
            if v.shape[0] != n:
                raise ConfigError(f"input {k!r} has {v.shape[0]} rows for {n} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> TensorSet:
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))
        out = TensorSet.__new__(TensorSet)
        out.tensors = {k: v.index_select(0, idx) for k, v in self.tensors.items()}
        out.labels, out.ids = self.labels[np.asarray(index)], self.ids[np.asarray(index)]
        return out

    def batch(self, index: np.ndarray, *, train: bool, rng: np.random.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))
        return {k: v.index_select(0, idx).to(device, non_blocking=True) for k, v in self.tensors.items()}


PREDICT_CROPS = ("cover", "whole", "first")
META_KEYS = ("crop_of", "window_start")


class DynamicFCSet:
    """Time series of any length -> padded sliding-window FC per batch, on the device.

    Subject ``i`` has its own window / stride in TRs (``window``, ``stride``: one value or
    one per subject, e.g. from ``window_seconds`` and the subject's TR). A batch holds
    ``"dfc"`` ``(B, W, R, R)`` and ``"mask"`` ``(B, W)`` (True = real window, see
    :func:`graphbrain.connectome.ragged.ragged_window_fc`), the zero-padded
    ``"timeseries"`` ``(B, T, R)`` and, when ``static`` is given, the static FC ``"fc"``
    ``(B, R, R)``.

    Training batches (``train=True``): a crop of ``crop_length`` TRs per subject (from a
    random start when ``random_crop``, else from the start; the whole scan when it is
    shorter or ``crop_length`` is None). With ``repeats=k`` the set lists every subject
    ``k`` times (``train.crops_per_subject``: ``k`` random crops per epoch).

    Evaluation batches (``train=False``): ``predict_crops`` decides which crops of each
    subject's own window grid are scored: ``"cover"`` (default) the whole scan when it
    has at most ``n_windows_max`` windows, otherwise runs of ``n_windows_max`` windows
    with a step of half a run, the last one ending at the scan's end; ``"whole"`` the
    whole scan as one crop; ``"first"`` the first ``n_windows_max`` windows only (the
    old behaviour). The batch then has one row per crop and two extra keys that are not
    model inputs: ``"crop_of"`` (position of the crop's subject in ``index``) and
    ``"window_start"`` (index of the crop's first window on the subject's grid); the
    :class:`Trainer` averages class probabilities over the crops of a subject.
    """

    def __init__(
        self,
        timeseries: list[np.ndarray],
        labels: np.ndarray,
        ids: np.ndarray | None,
        *,
        window: int | np.ndarray,
        stride: int | np.ndarray,
        crop_length: int | None = None,
        n_windows_max: int | None = None,
        random_crop: bool = True,
        static: np.ndarray | None = None,
        predict_crops: str = "cover",
        fisher_z: bool = False,
        repeats: int = 1,
        n_timepoints: int | None = None,
    ) -> None:
        self.timeseries = [np.ascontiguousarray(t, dtype=np.float32) for t in timeseries]
        n = len(self.timeseries)
        self.base_labels = np.asarray(labels, dtype=np.int64)
        self.base_ids = np.asarray(ids) if ids is not None else np.arange(n).astype(str)
        self.window = np.broadcast_to(np.asarray(window, dtype=np.int64), (n,)).copy()
        self.stride = np.broadcast_to(np.asarray(stride, dtype=np.int64), (n,)).copy()
        self.crop_length = crop_length if crop_length is not None else n_timepoints
        self.n_timepoints = self.crop_length  # old name
        self.random_crop, self.fisher_z = random_crop, fisher_z
        self.static = None if static is None else torch.as_tensor(np.ascontiguousarray(static, dtype=np.float32))
        if predict_crops not in PREDICT_CROPS:
            raise ConfigError(f"predict.crops must be one of {PREDICT_CROPS}, got {predict_crops!r}")
        self.predict_crops = predict_crops
        self.subject_windows = np.array(
            [count_windows(t.shape[0], int(self.window[i]), int(self.stride[i])) for i, t in enumerate(self.timeseries)],
            dtype=np.int64,
        )
        if n_windows_max is None:
            lens = [t.shape[0] if self.crop_length is None else min(t.shape[0], self.crop_length) for t in self.timeseries]
            n_windows_max = max(count_windows(int(L), int(self.window[i]), int(self.stride[i])) for i, L in enumerate(lens))
        self.n_windows_max = int(n_windows_max)
        self.repeats = int(repeats)

    @property
    def labels(self) -> np.ndarray:
        return np.tile(self.base_labels, self.repeats)

    @property
    def ids(self) -> np.ndarray:
        return np.tile(self.base_ids, self.repeats)

    def __len__(self) -> int:
        return len(self.timeseries) * self.repeats

    def subset(self, index: np.ndarray, *, repeats: int = 1) -> DynamicFCSet:
        idx = np.asarray(index, dtype=np.int64) % len(self.timeseries)
        out = DynamicFCSet.__new__(DynamicFCSet)
        out.__dict__.update(self.__dict__)
        out.timeseries = [self.timeseries[i] for i in idx]
        out.base_labels, out.base_ids = self.base_labels[idx], self.base_ids[idx]
        out.window, out.stride, out.subject_windows = self.window[idx], self.stride[idx], self.subject_windows[idx]
        out.static = None if self.static is None else self.static.index_select(0, torch.as_tensor(idx))
        out.repeats = int(repeats)
        return out

    def crops(self, i: int) -> list[tuple[int, int]]:
        """Window ranges ``[start, stop)`` of subject ``i`` scored at evaluation."""
        w = int(self.subject_windows[i])
        if self.predict_crops == "whole":
            return [(0, w)]
        if self.predict_crops == "first":
            return [(0, min(w, self.n_windows_max))]
        return cover_crops(w, self.n_windows_max)

    def batch(self, index: np.ndarray, *, train: bool, rng: np.random.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        n = len(self.timeseries)
        subj, segs, crop_of, wstart = [], [], [], []
        for pos, v in enumerate(np.asarray(index, dtype=np.int64)):
            i = int(v) % n
            ts = self.timeseries[i]
            if train:
                length = ts.shape[0] if self.crop_length is None else min(self.crop_length, ts.shape[0])
                start = int(rng.integers(0, ts.shape[0] - length + 1)) if self.random_crop else 0
                subj.append(i)
                segs.append(ts[start : start + length])
                continue
            win, st = int(self.window[i]), int(self.stride[i])
            for a, b in self.crops(i):
                subj.append(i)
                segs.append(ts[a * st : (b - 1) * st + win])
                crop_of.append(pos)
                wstart.append(a)
        x, lengths = pad_timeseries(segs, device=device)
        sidx = np.asarray(subj, dtype=np.int64)
        dfc, mask = ragged_window_fc(x, lengths, self.window[sidx], self.stride[sidx], fisher_z=self.fisher_z)
        out = {"dfc": dfc, "mask": mask, "timeseries": x}
        if self.static is not None:
            out["fc"] = self.static.index_select(0, torch.as_tensor(sidx)).to(device, non_blocking=True)
        if not train:
            out["crop_of"] = torch.as_tensor(crop_of, dtype=torch.int64, device=device)
            out["window_start"] = torch.as_tensor(wstart, dtype=torch.int64, device=device)
        return out


def split_meta(batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(model inputs, bookkeeping keys such as ``"crop_of"``) of a dataset batch."""
    meta = {k: batch[k] for k in META_KEYS if k in batch}
    return {k: v for k, v in batch.items() if k not in META_KEYS}, meta


def average_crops(logits: torch.Tensor, crop_of: torch.Tensor, n: int) -> torch.Tensor:
    """Per-crop logits ``(K, C)`` -> log of the mean class probability over each subject's crops ``(n, C)``."""
    p = torch.softmax(logits.float(), dim=1)
    total = p.new_zeros(n, p.shape[1]).index_add_(0, crop_of, p)
    count = torch.bincount(crop_of, minlength=n).clamp_min(1).to(p.dtype).unsqueeze(1)
    return torch.log((total / count).clamp_min(1e-12))


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("nan")
    stopped_early: bool = False
    seconds: float = 0.0


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    if p.shape[1] == 2:
        return float(roc_auc_score(y, p[:, 1]))
    return float(roc_auc_score(y, p, multi_class="ovr", labels=np.arange(p.shape[1])))


class Trainer:
    """Fit a model returning :class:`~graphbrain.models.base.ModelOutput` with early stopping.

    Args:
        config: train settings (see :data:`TRAIN_DEFAULTS`); unknown keys raise.
        seed: seeds torch / numpy / random and the batch order.
    """

    def __init__(self, config: dict[str, Any] | None = None, *, seed: int = 0) -> None:
        self.config = train_config(config)
        self.seed = int(seed)
        self.device = resolve_device(self.config["device"])
        # torchrun-launched data-parallel job (graphbrain.training.distributed); None otherwise
        self.dist = distributed.current()
        if self.dist is not None:
            self.device = self.dist.device(self.device)
        amp = self.config["amp"] or "none"
        if amp != "none" and self.device.type != "cuda":
            log.warning("mixed precision (%s) needs CUDA; training in float32 on %s", amp, self.device)
            amp = "none"
        self.amp = amp

    # -- helpers -----------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _batches(self, n: int, rng: np.random.Generator | None) -> list[np.ndarray]:
        bs = self.config["batch_size"]
        order = rng.permutation(n) if rng is not None else np.arange(n)
        parts = [order[i : i + bs] for i in range(0, n, bs)]
        if rng is not None and len(parts) > 1 and len(parts[-1]) == 1:
            parts = parts[:-1]  # a 1-sample batch breaks BatchNorm in training mode
        return parts

    def _forward(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> ModelOutput:
        with self._autocast():
            return model(batch)

    # -- public API --------------------------------------------------------------------
    def fit(
        self, model: nn.Module, train_set: Dataset, val_set: Dataset | None = None, *, n_classes: int | None = None
    ) -> TrainResult:
        """Train ``model`` in place; with ``val_set`` keep the best-validation weights.

        ``n_classes`` (default: max training label + 1, at least 2) sizes the class weights.
        """
        cfg = self.config
        with deterministic(self.device.type == "cpu", cfg["num_threads"]):
            return self._fit(model, train_set, val_set, cfg, n_classes)

    def _fit(
        self, model: nn.Module, train_set: Dataset, val_set: Dataset | None, cfg: dict[str, Any], n_classes: int | None
    ) -> TrainResult:
        seed_everything(self.seed)
        rng = np.random.default_rng(self.seed)
        model.to(self.device)
        y_train = np.asarray(train_set.labels)
        n_classes = int(n_classes or max(int(y_train.max()) + 1, 2))
        weight = class_weights(y_train, n_classes, cfg["class_weight"])
        weight = weight.to(self.device) if weight is not None else None
        opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        steps = len(self._batches(len(train_set), np.random.default_rng(0)))
        total, warm = cfg["epochs"] * steps, cfg["warmup_epochs"] * steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warm))
        scaler = torch.amp.GradScaler("cuda") if self.amp == "fp16" else None
        monitor = cfg["monitor"]
        sign = 1.0 if monitor == "val_loss" else -1.0  # minimise sign * score
        best = best_loss = math.inf
        # Epochs inside the warm-up are not candidates for the best weights (nor count towards
        # patience): a noisy validation metric on a few dozen subjects would otherwise often
        # "prefer" the barely trained epoch-0 weights (seen on ABIDE: best epoch 0, chance AUROC).
        first_candidate = min(cfg["warmup_epochs"], cfg["epochs"] - 1)
        result = TrainResult()
        best_state: dict[str, torch.Tensor] | None = None
        bad = 0
        t_start = time.perf_counter()
        main = self.dist is None or self.dist.rank == 0
        fwd = model if self.dist is None else self.dist.wrap(model, self.device)  # DDP: gradient all-reduce
        bar = tqdm(range(cfg["epochs"]), desc=type(model).__name__, disable=not (cfg["progress"] and main), leave=False)
        for epoch in bar:
            t0 = time.perf_counter()
            model.train()
            tot, count = 0.0, 0
            for idx in self._batches(len(train_set), rng):
                local, share = (idx, 1.0) if self.dist is None else self.dist.shard(idx)
                batch = train_set.batch(local, train=True, rng=rng, device=self.device)
                y = torch.as_tensor(y_train[local], device=self.device)
                out = self._forward(fwd, batch)
                if self.dist is not None:  # this rank's share of the global-batch loss
                    loss = self.dist.loss(out, y, y_train[idx], weight, share)
                else:
                    loss = F.cross_entropy(out.logits.float(), y, weight=weight)
                    if out.aux_loss is not None:
                        loss = loss + out.aux_loss.float()
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                else:
                    loss.backward()
                if cfg["grad_clip"]:
                    nn.utils.clip_grad_norm_(model.parameters(), float(cfg["grad_clip"]))
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                sched.step()
                tot += (float(loss.detach()) if self.dist is None else self.dist.global_mean(loss)) * len(idx)
                count += len(idx)
            row: dict[str, Any] = {"epoch": epoch, "train_loss": tot / max(count, 1), "lr": opt.param_groups[0]["lr"]}
            if val_set is not None and len(val_set) > 0:
                row.update(self.evaluate(model, val_set, weight=weight))
                score = sign * float(row[monitor])
                if math.isnan(score):
                    score = math.inf
                if epoch < first_candidate:
                    pass  # still warming up: the lr has not reached its value, weights are near init
                elif score < best - 1e-6 or (
                    monitor != "val_loss" and score <= best + 1e-6 and float(row["val_loss"]) < best_loss - 1e-6
                ):
                    # ties of a discrete metric (AUROC / accuracy on a few dozen subjects,
                    # often saturated) go to the lower validation loss
                    best, best_loss, bad = min(score, best), float(row["val_loss"]), 0
                    result.best_epoch = epoch
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                else:
                    bad += 1
            row["seconds"] = time.perf_counter() - t0
            result.history.append(row)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in ("train_loss", "val_loss", "val_auroc")})
            if cfg["log_dir"] and main:
                self.write_log(result.history, cfg["log_dir"])
            if val_set is not None and cfg["patience"] and bad >= cfg["patience"]:
                result.stopped_early = True
                break
        if best_state is not None:
            model.load_state_dict(best_state)
            result.best_score = sign * best
        result.seconds = time.perf_counter() - t_start
        model.eval()
        return result

    @torch.inference_mode()
    def evaluate(self, model: nn.Module, dataset: Dataset, *, weight: torch.Tensor | None = None) -> dict[str, float]:
        """Validation loss (class-weighted CE, no aux term), accuracy and AUROC."""
        proba, logits = self._predict(model, dataset, attention=False)[0:2]
        y = torch.as_tensor(np.asarray(dataset.labels))
        loss = F.cross_entropy(logits, y, weight=None if weight is None else weight.cpu())
        yn = y.numpy()
        return {
            "val_loss": float(loss),
            "val_accuracy": float((proba.argmax(1) == yn).mean()),
            "val_auroc": _auroc(yn, proba),
        }

    def predict(self, model: nn.Module, dataset: Dataset, *, attention: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Class probabilities ``(N, C)`` and (optionally) the attention record per subject."""
        with deterministic(False, self.config["num_threads"]):
            proba, _, att = self._predict(model, dataset, attention=attention)
        return proba, att

    @torch.inference_mode()
    def _predict(self, model: nn.Module, dataset: Dataset, *, attention: bool) -> tuple[np.ndarray, torch.Tensor, dict[str, np.ndarray]]:
        was_training = model.training
        model.eval()
        model.to(self.device)
        rng = np.random.default_rng(0)
        logits, att_parts = [], {}
        for idx in self._batches(len(dataset), None):
            inputs, meta = split_meta(dataset.batch(idx, train=False, rng=rng, device=self.device))
            out = self._forward(model, inputs)
            lg = out.logits.float()
            if "crop_of" in meta:  # several crops per subject: mean probability over them
                if attention and lg.shape[0] != len(idx):
                    raise ConfigError("attention records of crop-averaged predictions: use TorchClassifier.explain")
                lg = average_crops(lg, meta["crop_of"], len(idx))
            logits.append(lg.cpu())
            if attention:
                for k, v in out.attention.items():
                    att_parts.setdefault(k, []).append(v.float().cpu().numpy())
        model.train(was_training)
        lg = torch.cat(logits)
        proba = torch.softmax(lg, dim=1).numpy()
        return proba, lg, {k: np.concatenate(v) for k, v in att_parts.items()}

    @staticmethod
    def write_log(history: list[dict[str, Any]], log_dir: str | Path) -> None:
        """Write the per-epoch log as ``history.csv`` and ``history.json`` in ``log_dir``."""
        d = Path(log_dir)
        d.mkdir(parents=True, exist_ok=True)
        keys = list(dict.fromkeys(k for row in history for k in row))
        with (d / "history.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(history)
        (d / "history.json").write_text(json.dumps(history, indent=1, default=float))

