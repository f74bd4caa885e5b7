"""Cross-validation splits: stratified k-fold (optionally repeated) and leave-site-out.

Each split is a :class:`Fold` of integer indices into the cohort. Inner validation
splits (for early stopping / model selection) are carved from a fold's *training*
indices only, with :func:`inner_split`.

Every split is **group-aware**: pass ``groups`` (one participant id per subject, e.g.
:attr:`graphbrain.data.Cohort.participants`) and the runs / sessions of one participant
always land on the same side (scikit-learn's ``StratifiedGroupKFold``). When every
subject is its own participant the splits are exactly the ungrouped ones
(``StratifiedKFold`` / ``train_test_split``), so results of cohorts without repeated
participants do not change. :func:`check_folds` re-verifies the guarantee on the
finished folds and refuses any fold that separates a participant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import (
    GroupShuffleSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from graphbrain.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    """One train/test split. ``name`` reads like ``"fold3"`` or ``"site=NYU"``."""

    name: str
    train: np.ndarray
    test: np.ndarray
    repeat: int = 0


def _groups(groups: np.ndarray | None, n: int) -> np.ndarray | None:
    """``groups`` as an array of length ``n``, or ``None`` when every subject is its own group."""
    if groups is None:
        return None
    g = np.asarray(groups).astype(str)
    if g.shape != (n,):
        raise ConfigError(f"groups must hold one participant id per subject ({n}), got shape {g.shape}")
    if len(np.unique(g)) == n:
        return None
    return g


def _smallest_class(labels: np.ndarray, groups: np.ndarray | None) -> int:
    """Subjects (or, with groups, distinct participants) in the least frequent class."""
    if labels.size == 0:
        return 0
    if groups is None:
        counts = np.unique(labels, return_counts=True)[1]
    else:
        counts = np.asarray([len(np.unique(groups[labels == c])) for c in np.unique(labels)])
    return int(counts.min())


def stratified_kfold(
    labels: np.ndarray,
    n_splits: int = 10,
    *,
    repeats: int = 1,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> Iterator[Fold]:
    """Stratified k-fold, repeated ``repeats`` times with different shuffles.

    With ``groups`` holding repeated participants, ``StratifiedGroupKFold`` keeps each
    participant's subjects in one test fold.
    """
    labels = np.asarray(labels)
    g = _groups(groups, len(labels))
    if n_splits < 2:
        raise ConfigError(f"n_splits must be at least 2, got {n_splits}")
    smallest = _smallest_class(labels, g)
    unit = "subject(s)" if g is None else "participant(s)"
    if smallest < n_splits:
        raise ConfigError(
            f"cannot make {n_splits} stratified folds: the smallest class has {smallest} {unit}"
        )
    for r in range(repeats):
        if g is None:
            splits = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed + r).split(
                np.zeros(len(labels)), labels
            )
        else:
            splits = StratifiedGroupKFold(
                n_splits=n_splits, shuffle=True, random_state=seed + r
            ).split(np.zeros(len(labels)), labels, g)
        for k, (tr, te) in enumerate(splits):
            name = f"fold{k}" if repeats == 1 else f"rep{r}-fold{k}"
            yield Fold(name, np.sort(tr), np.sort(te), r)


def leave_site_out(
    sites: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    min_test: int = 1,
    groups: np.ndarray | None = None,
) -> Iterator[Fold]:
    """One fold per site: train on all other sites, test on this one.

    Sites whose test set would hold a single class still run (accuracy is defined),
    but AUROC is undefined there and reported as NaN by the metrics. With ``groups``,
    a participant scanned at the held-out site *and* elsewhere is removed from that
    fold's training set (a warning says how many subjects), so no person is on both sides.
    """
    sites = np.asarray(sites)
    g = _groups(groups, len(sites))
    uniq = sorted(set(sites.tolist()))
    if len(uniq) < 2:
        raise ConfigError(f"leave-site-out needs at least 2 sites, the cohort has {len(uniq)}: {uniq}")
    for site in uniq:
        te = np.flatnonzero(sites == site)
        tr = np.flatnonzero(sites != site)
        if te.size < min_test:
            continue
        if g is not None:
            shared = np.isin(g[tr], g[te])
            if shared.any():
                log.warning(
                    "site %r: %d training subject(s) belong to participants also scanned at this "
                    "site; they are left out of this fold's training set",
                    site,
                    int(shared.sum()),
                )
                tr = tr[~shared]
        if labels is not None and len(np.unique(np.asarray(labels)[tr])) < 2:
            raise ConfigError(f"leaving out site {site!r} leaves a single class for training")
        yield Fold(f"site={site}", tr, te)


def check_folds(folds: Iterable[Fold], n: int, groups: np.ndarray | None = None) -> None:
    """Refuse folds whose train and test share a subject or (with ``groups``) a participant."""
    g = None if groups is None else np.asarray(groups).astype(str)
    for f in folds:
        for part, idx in (("train", f.train), ("test", f.test)):
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ConfigError(f"fold {f.name}: {part} index out of range for {n} subjects")
        both = np.intersect1d(f.train, f.test)
        if both.size:
            raise ConfigError(f"fold {f.name}: subject index(es) {both[:5].tolist()} in train and test")
        if g is not None:
            shared = np.intersect1d(g[f.train], g[f.test])
            if shared.size:
                raise ConfigError(
                    f"fold {f.name}: participant(s) {shared[:5].tolist()} in both train and test"
                )


def make_folds(
    scheme: str,
    labels: np.ndarray,
    sites: np.ndarray,
    *,
    n_splits: int = 10,
    repeats: int = 1,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> list[Fold]:
    """Folds by scheme name: ``stratified`` or ``leave_site_out``; grouped by ``groups``."""
    if scheme in ("stratified", "stratified_kfold", "kfold"):
        folds = list(stratified_kfold(labels, n_splits, repeats=repeats, seed=seed, groups=groups))
    elif scheme in ("leave_site_out", "loso"):
        folds = list(leave_site_out(sites, labels, groups=groups))
    else:
        raise ConfigError(f"unknown cv scheme {scheme!r}; use 'stratified' or 'leave_site_out'")
    check_folds(folds, len(np.asarray(labels)), groups)
    return folds


def inner_split(
    train_index: np.ndarray,
    labels: np.ndarray,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's training indices into (fit, validation), stratified by label.

    Only indices from ``train_index`` are ever returned, so test subjects can never
    reach model selection or early stopping. ``labels`` and ``groups`` are indexed by
    ``train_index`` (they cover the whole cohort); with repeated participants in
    ``groups`` the validation part is one fold of a ``StratifiedGroupKFold`` with about
    ``1 / val_fraction`` folds, so no participant is both fitted and validated on.
    """
    train_index = np.asarray(train_index)
    y = np.asarray(labels)[train_index]
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    g = None if groups is None else _groups(np.asarray(groups)[train_index], len(train_index))
    if g is None:
        classes, counts = np.unique(y, return_counts=True)
        n_val = int(np.ceil(val_fraction * len(y)))  # train_test_split's size for a fraction
        # stratify only when each class can be in both parts
        ok = counts.min() >= 2 and len(classes) <= min(n_val, len(y) - n_val)
        strat = y if ok else None
        fit_idx, val_idx = train_test_split(
            train_index, test_size=val_fraction, random_state=seed, stratify=strat
        )
        return np.sort(fit_idx), np.sort(val_idx)
    n_groups = len(np.unique(g))
    k = min(max(2, int(round(1.0 / val_fraction))), n_groups)
    if k < 2:
        raise ConfigError(f"an inner validation split needs at least 2 participants, got {n_groups}")
    # StratifiedGroupKFold needs every class to have at least k members: fewer folds when a
    # class is small, and a plain grouped split when a class has a single member
    k_strat = min(k, int(np.unique(y, return_counts=True)[1].min()))
    if k_strat >= 2:
        sgkf = StratifiedGroupKFold(n_splits=k_strat, shuffle=True, random_state=seed)
        fit_pos, val_pos = next(iter(sgkf.split(np.zeros(len(y)), y, g)))
    else:
        gss = GroupShuffleSplit(n_splits=1, test_size=1.0 / k, random_state=seed)
        fit_pos, val_pos = next(iter(gss.split(np.zeros(len(y)), y, g)))
    return np.sort(train_index[fit_pos]), np.sort(train_index[val_pos])


def merge_groups(groups: np.ndarray, pairs: Iterable[tuple[str, str]]) -> np.ndarray:
    """Participant ids with each pair of ids (e.g. near-duplicates an audit found) merged.

    Union-find over the ids: the result gives every connected set of ids one
    representative (its smallest id), so passing it as ``groups`` keeps duplicates
    together in every split.
    """
    g = np.asarray(groups).astype(str)
    parent: dict[str, str] = {x: x for x in g.tolist()}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        for x in (a, b):
            if str(x) not in parent:
                raise ConfigError(f"merge_groups: id {x!r} is not among the participant ids")
        ra, rb = find(str(a)), find(str(b))
        if ra != rb:
            lo, hi = sorted((ra, rb))
            parent[hi] = lo
    return np.asarray([find(x) for x in g.tolist()])
