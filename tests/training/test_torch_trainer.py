"""Trainer: config validation, schedule, class weights, determinism, early stopping, logs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from graphbrain.errors import ConfigError
from graphbrain.models.base import ModelOutput
from graphbrain.training.trainer import (
    TRAIN_DEFAULTS,
    TensorSet,
    Trainer,
    class_weights,
    resolve_device,
    train_config,
    warmup_cosine,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core box, OpenMP threads spinning against other
    processes make 2 threads far slower than 1."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


class Tiny(nn.Module):
    def __init__(self, d: int = 6) -> None:
        super().__init__()
        self.lin = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, batch):
        return ModelOutput(logits=self.lin(batch["x"]))


def _sets(n=120, d=6, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.standard_normal((n, d)).astype(np.float32) * noise
    x[:, 0] += 1.5 * (2 * y - 1)
    s = TensorSet({"x": x}, y, np.asarray([f"s{i}" for i in range(n)]))
    idx = rng.permutation(n)
    return s.subset(idx[: n * 3 // 4]), s.subset(idx[n * 3 // 4 :])


def test_unknown_train_key_lists_valid_ones():
    with pytest.raises(ConfigError) as err:
        train_config({"epochs": 3, "learning_rate": 0.1})
    assert "learning_rate" in str(err.value) and "lr" in str(err.value) and "patience" in str(err.value)
    with pytest.raises(ConfigError):
        train_config({"amp": "fp8"})
    assert set(train_config({})) == set(TRAIN_DEFAULTS)


def test_warmup_then_cosine():
    total, warm = 100, 10
    f = [warmup_cosine(s, total, warm) for s in range(total)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)
    assert f[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # non-increasing after warm-up


def test_balanced_class_weights():
    w = class_weights(np.array([0, 0, 0, 1]), 2)
    torch.testing.assert_close(w, torch.tensor([4 / 6, 4 / 2]))
    assert class_weights(np.array([0, 1]), 2, "none") is None


def test_same_seed_same_weights_and_training_learns():
    tr, va = _sets()
    cfg = {"epochs": 8, "batch_size": 16, "lr": 0.01, "progress": False, "patience": 0}
    torch.manual_seed(0)
    m1 = Tiny()
    torch.manual_seed(0)
    m2 = Tiny()
    r1 = Trainer(cfg, seed=3).fit(m1, tr, va)
    r2 = Trainer(cfg, seed=3).fit(m2, tr, va)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert r1.history == [dict(h, seconds=r1.history[i]["seconds"]) for i, h in enumerate(r2.history)]
    assert r1.history[-1]["val_auroc"] > 0.85
    assert r1.history[-1]["train_loss"] < r1.history[0]["train_loss"]


def test_early_stopping_restores_best_validation_weights(tmp_path):
    tr, va = _sets(noise=3.0)
    cfg = {"epochs": 60, "batch_size": 8, "lr": 0.05, "patience": 3, "progress": False, "log_dir": str(tmp_path),
           "monitor": "val_loss", "warmup_epochs": 0}
    model = Tiny()
    trainer = Trainer(cfg, seed=0)
    res = trainer.fit(model, tr, va)
    losses = [h["val_loss"] for h in res.history]
    assert res.stopped_early and len(losses) < 60
    assert res.best_epoch == int(np.argmin(losses))
    assert len(losses) - 1 - res.best_epoch == 3  # stopped exactly `patience` epochs later
    weight = class_weights(tr.labels, 2)
    assert trainer.evaluate(model, va, weight=weight)["val_loss"] == pytest.approx(min(losses), abs=1e-6)
    # metrics log on disk
    rows = (tmp_path / "history.csv").read_text().strip().splitlines()
    assert len(rows) == len(losses) + 1 and rows[0].startswith("epoch,train_loss")
    assert len(json.loads((tmp_path / "history.json").read_text())) == len(losses)


def test_device_selection_and_amp_fallback_on_cpu():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError):
            resolve_device("cuda")
        tr, va = _sets()
        t = Trainer({"epochs": 2, "amp": "bf16", "progress": False})
        assert t.amp == "none"  # mixed precision is CUDA-only
        t.fit(Tiny(), tr, va)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_on_cuda(amp):
    tr, va = _sets()
    t = Trainer({"epochs": 5, "amp": amp, "device": "cuda", "progress": False})
    res = t.fit(Tiny(), tr, va)
    assert np.isfinite(res.history[-1]["train_loss"]) and res.history[-1]["val_auroc"] > 0.8


def _scripted_evaluate(monkeypatch, rows):
    """Replace Trainer.evaluate by a script of per-epoch validation metrics."""
    it = iter(rows)
    monkeypatch.setattr(Trainer, "evaluate", lambda self, model, dataset, weight=None: dict(next(it)))


def test_default_monitor_is_val_auroc_not_the_overconfidence_prone_val_loss(monkeypatch):
    # Regression (ABIDE): the validation loss of an over-confident model rises from epoch 0
    # while its validation AUROC keeps improving; monitoring val_loss restored the barely
    # trained weights (best epoch 0-8, chance AUROC on the test folds).
    assert TRAIN_DEFAULTS["monitor"] == "val_auroc"
    tr, va = _sets()
    rows = [{"val_loss": 0.6 + 0.2 * e, "val_accuracy": 0.5, "val_auroc": 0.5 + 0.03 * min(e, 6)} for e in range(12)]
    _scripted_evaluate(monkeypatch, rows)
    res = Trainer({"epochs": 12, "batch_size": 16, "patience": 0, "warmup_epochs": 0, "progress": False}).fit(Tiny(), tr, va)
    assert res.best_epoch == 6
    assert res.best_score == pytest.approx(0.68)


def test_warmup_epochs_are_not_candidates_for_the_best_weights(monkeypatch):
    # Regression: a noisy validation metric made the epoch-0 weights (lr still ramping up,
    # weights near init) the "best" ones; they are now only taken after the warm-up.
    tr, va = _sets()
    rows = [{"val_loss": 0.7, "val_accuracy": 0.5, "val_auroc": a} for a in (0.9, 0.8, 0.6, 0.7, 0.65, 0.6)]
    _scripted_evaluate(monkeypatch, rows)
    cfg = {"epochs": 6, "batch_size": 16, "patience": 2, "warmup_epochs": 2, "progress": False, "monitor": "val_auroc"}
    res = Trainer(cfg).fit(Tiny(), tr, va)
    assert res.best_epoch == 3
    assert res.stopped_early and len(res.history) == 6
    # fewer epochs than warm-up: the last epoch is still a candidate
    _scripted_evaluate(monkeypatch, rows)
    res = Trainer(dict(cfg, epochs=2, warmup_epochs=4)).fit(Tiny(), tr, va)
    assert res.best_epoch == 1


def test_ties_of_the_monitored_auroc_go_to_the_lower_validation_loss(monkeypatch):
    # a saturated AUROC (1.0 on a small validation split) must not freeze the first epoch that reached it
    tr, va = _sets()
    rows = [{"val_loss": v, "val_accuracy": 1.0, "val_auroc": a}
            for v, a in ((0.7, 0.9), (0.5, 1.0), (0.3, 1.0), (0.2, 1.0), (0.4, 1.0), (0.1, 0.95))]
    _scripted_evaluate(monkeypatch, rows)
    res = Trainer({"epochs": 6, "batch_size": 16, "patience": 0, "warmup_epochs": 0, "progress": False}).fit(Tiny(), tr, va)
    assert res.best_epoch == 3
