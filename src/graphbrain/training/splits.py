"""Cross-validation splits: stratified k-fold (optionally repeated) and leave-site-out.

Each split is a :class:`Fold` of integer indices into the cohort. Inner validation
splits (for early stopping / model selection) are carved from a fold's *training*
indices only, with :func:`inner_split`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from graphbrain.errors import ConfigError


@dataclass(frozen=True)
class Fold:
    """One train/test split. ``name`` reads like ``"fold3"`` or ``"site=NYU"``."""

    name: str
    train: np.ndarray
    test: np.ndarray
    repeat: int = 0


def stratified_kfold(
    labels: np.ndarray, n_splits: int = 10, *, repeats: int = 1, seed: int = 0
) -> Iterator[Fold]:
    """Stratified k-fold, repeated ``repeats`` times with different shuffles."""
    labels = np.asarray(labels)
    counts = np.bincount(labels) if labels.size else np.array([0])
    smallest = counts[counts > 0].min() if (counts > 0).any() else 0
    if n_splits < 2:
        raise ConfigError(f"n_splits must be at least 2, got {n_splits}")
    if smallest < n_splits:
        raise ConfigError(
            f"cannot make {n_splits} stratified folds: the smallest class has {smallest} subject(s)"
        )
    for r in range(repeats):
        skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed + r)
        for k, (tr, te) in enumerate(skf.split(np.zeros(len(labels)), labels)):
            name = f"fold{k}" if repeats == 1 else f"rep{r}-fold{k}"
            yield Fold(name, tr, te, r)


def leave_site_out(sites: np.ndarray, labels: np.ndarray | None = None, *, min_test: int = 1) -> Iterator[Fold]:
    """One fold per site: train on all other sites, test on this one.

    Sites whose test set would hold a single class still run (accuracy is defined),
    but AUROC is undefined there and reported as NaN by the metrics.
    """
    sites = np.asarray(sites)
    uniq = sorted(set(sites.tolist()))
    if len(uniq) < 2:
        raise ConfigError(f"leave-site-out needs at least 2 sites, the cohort has {len(uniq)}: {uniq}")
    for site in uniq:
        te = np.flatnonzero(sites == site)
        tr = np.flatnonzero(sites != site)
        if te.size < min_test:
            continue
        if labels is not None and len(np.unique(np.asarray(labels)[tr])) < 2:
            raise ConfigError(f"leaving out site {site!r} leaves a single class for training")
        yield Fold(f"site={site}", tr, te)


def make_folds(
    scheme: str,
    labels: np.ndarray,
    sites: np.ndarray,
    *,
    n_splits: int = 10,
    repeats: int = 1,
    seed: int = 0,
) -> list[Fold]:
    """Folds by scheme name: ``stratified`` or ``leave_site_out``."""
    if scheme in ("stratified", "stratified_kfold", "kfold"):
        return list(stratified_kfold(labels, n_splits, repeats=repeats, seed=seed))
    if scheme in ("leave_site_out", "loso"):
        return list(leave_site_out(sites, labels))
    raise ConfigError(f"unknown cv scheme {scheme!r}; use 'stratified' or 'leave_site_out'")


def inner_split(
    train_index: np.ndarray, labels: np.ndarray, *, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's training indices into (fit, validation), stratified by label.

    Only indices from ``train_index`` are ever returned, so test subjects can never
    reach model selection or early stopping.
    """
    train_index = np.asarray(train_index)
    y = np.asarray(labels)[train_index]
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    strat = y if np.bincount(y).min() >= 2 else None
    fit_idx, val_idx = train_test_split(
        train_index, test_size=val_fraction, random_state=seed, stratify=strat
    )
    return np.sort(fit_idx), np.sort(val_idx)
