"""Does an attribution point at what the model uses? Deletion and insertion curves.

For each subject, units (ROIs, edges or windows) are ranked by the method's
attribution in favour of the class the model predicted for that subject (signed
methods: ``attr`` for class 1, ``-attr`` for class 0; unsigned: the value). Then,
without retraining, the model re-scores perturbed inputs:

* deletion: the top ``k`` units are replaced by the mean input (mean over the subjects
  being scored, in the model's input space: standardised FC for linear and static
  torch models, window FC for dynamic ones). Removing ROI ``i`` replaces every edge
  incident to ``i`` (in every window); removing a window replaces its whole matrix;
* insertion: start with every unit replaced and restore the top ``k``.

The score is the probability of the originally predicted class. Curves are averaged
over subjects at fractions ``0, 1/n_steps, ..., 1`` of the units. Summaries:

    deletion area over the curve   AOC = integral_0^1 (s(0) - s(f)) df    (larger = faithful)
    insertion area                 AUC = integral_0^1 (s(f) - s_empty) df (larger = faithful)

each compared with the same quantity for ``n_random`` (default 20) random rankings
(a fresh random order per subject). A method is called faithful on a unit when both
its deletion AOC and insertion area exceed the random mean by at least 2 random
standard deviations (``"partly"`` when one of the two does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.integrate import trapezoid

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError
from graphbrain.explain._inputs import input_batches, input_key, is_linear, linear_inputs
from graphbrain.explain.attribution import Explanation


class _Scorer:
    """Re-scores one classifier's inputs for a set of subjects under unit masks."""

    def __init__(self, clf: Any, cohort: Cohort, batch_size: int = 64) -> None:
        self.clf = clf
        self.n = len(cohort)
        if is_linear(clf):
            z, _, _ = linear_inputs(clf, cohort)
            from graphbrain.explain.attribution import n_rois_from_edges

            r = n_rois_from_edges(z.shape[1])
            self.r = r
            il = np.tril_indices(r, -1)
            mat = np.zeros((self.n, r, r))
            mat[:, il[0], il[1]] = z
            mat = mat + mat.transpose(0, 2, 1)
            self.kind = "linear"
            self.batches = [(np.arange(self.n), mat)]
            self.mean = mat.mean(0)
            self.il = il
            self.w = None
        else:
            import torch

            self.kind = "torch"
            self.key = input_key(clf)
            self.batches = [(rows, batch) for rows, batch in input_batches(clf, cohort, batch_size)]
            xs = [b[self.key].detach().float() for _, b in self.batches]
            shapes = {tuple(x.shape[1:]) for x in xs}
            if len(shapes) == 1:
                self.mean = torch.cat(xs).mean(0)
            else:  # variable number of windows: mean over the subjects that have each window
                wmax = max(x.shape[1] for x in xs)
                tot = torch.zeros((wmax, *xs[0].shape[2:]), device=xs[0].device)
                cnt = torch.zeros(wmax, device=xs[0].device)
                for x in xs:
                    tot[: x.shape[1]] += x.sum(0)
                    cnt[: x.shape[1]] += x.shape[0]
                self.mean = tot / cnt.clamp_min(1).view(-1, *([1] * (tot.dim() - 1)))
            self.r = int(xs[0].shape[-1])
            self.w = int(xs[0].shape[1]) if xs[0].dim() == 4 else None
            # a dynamic model's linear path reads the static FC "fc": ROIs / edges are
            # removed from it too, so a deleted edge is gone from every input of the model
            self.fc_mean = None
            if self.key != "fc" and all(torch.is_tensor(b.get("fc")) for _, b in self.batches):
                self.fc_mean = torch.cat([b["fc"].detach().float() for _, b in self.batches]).mean(0)

    def n_units(self, unit: str) -> int:
        if unit == "roi":
            return self.r
        if unit == "edge":
            return self.r * (self.r - 1) // 2
        if unit == "window":
            if self.w is None:
                raise ConfigError("window units need a dynamic-FC model")
            return self.w
        raise ConfigError(f"unknown unit {unit!r}; use roi, edge or window")

    def _mask(self, unit: str, sel: np.ndarray) -> np.ndarray:
        """Boolean mask of replaced input elements from selected units ``sel`` (B, K)."""
        if unit == "roi":
            m = sel[:, :, None] | sel[:, None, :]
        elif unit == "edge":
            r = self.r
            m = np.zeros((sel.shape[0], r, r), dtype=bool)
            iu = np.triu_indices(r, 1)
            m[:, iu[0], iu[1]] = sel
            m[:, iu[1], iu[0]] = sel
        else:
            return sel[:, :, None, None]
        return m[:, None] if (self.kind == "torch" and self.key == "dfc") else m

    def score(self, unit: str, rank: np.ndarray, k: int, invert: bool) -> np.ndarray:
        """P(class 1) per subject with units of rank < k replaced (or kept, when ``invert``)."""
        out = np.zeros(self.n)
        cnt = np.zeros(self.n)
        for rows, batch in self.batches:
            sel = rank[rows] < k
            if invert:
                sel = ~sel
            m = self._mask(unit, sel)
            if self.kind == "linear":
                x = np.where(m, self.mean[None], batch)
                z = x[:, self.il[0], self.il[1]]
                p = self._linear_proba(z)
            else:
                p = self._torch_proba(batch, m, unit)
            np.add.at(out, rows, p)
            np.add.at(cnt, rows, 1)
        return out / np.maximum(cnt, 1)

    def _linear_proba(self, z: np.ndarray) -> np.ndarray:
        model = self.clf.model
        if hasattr(model, "predict_proba"):
            return model.predict_proba(z)[:, 1]
        return 1.0 / (1.0 + np.exp(-model.decision_function(z)))

    def _torch_proba(self, batch: dict[str, Any], m: np.ndarray, unit: str) -> np.ndarray:
        import torch

        x = batch[self.key]
        mt = torch.as_tensor(m, device=x.device)
        mean = self.mean[: x.shape[1]] if self.w is not None else self.mean
        with torch.inference_mode():
            xp = torch.where(mt, mean.unsqueeze(0).to(x.dtype), x)
            new = {**batch, self.key: xp}
            if self.fc_mean is not None and unit in ("roi", "edge"):
                fc = batch["fc"]
                new["fc"] = torch.where(mt[:, 0], self.fc_mean.unsqueeze(0).to(fc.dtype), fc)
            logits = self.clf.model(new).logits.float()
            return torch.softmax(logits, dim=1)[:, 1].cpu().numpy().astype(np.float64)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Per row, rank 0 = the unit to remove first (largest value; NaN last)."""
    v = np.where(np.isfinite(values), values, -np.inf)
    order = np.argsort(-v, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(v.shape[1])[None, :].repeat(v.shape[0], 0), axis=1)
    return rank


def _support(expl_rows: np.ndarray, signed: bool, pred1: np.ndarray) -> np.ndarray:
    if not signed:
        return expl_rows
    return expl_rows * np.where(pred1, 1.0, -1.0)[:, None]


@dataclass
class Faithfulness:
    """Curves (long table) and the per (method, unit) summary table."""

    curves: pd.DataFrame
    table: pd.DataFrame


def _curves_for(scorer: _Scorer, unit: str, rank: np.ndarray, fractions: np.ndarray, pred1: np.ndarray) -> dict[str, np.ndarray]:
    k_total = scorer.n_units(unit)
    ks = np.round(fractions * k_total).astype(int)
    out = {}
    for kind, invert in (("deletion", False), ("insertion", True)):
        vals = []
        for k in ks:
            p = scorer.score(unit, rank, int(k), invert)
            vals.append(np.where(pred1, p, 1 - p))
        out[kind] = np.stack(vals, axis=1)  # (N, steps)
    return out


def faithfulness(
    models: dict[str, Any] | Any,
    cohort: Cohort,
    explanations: Sequence[Explanation],
    *,
    units: Sequence[str] = ("roi", "edge", "window"),
    n_steps: int = 10,
    n_random: int = 20,
    seed: int = 0,
    batch_size: int = 64,
) -> Faithfulness:
    """Deletion / insertion curves of each explanation's ranking vs random rankings.

    Args:
        models: one fitted classifier (explanations' rows = ``cohort``) or, for a run,
            ``{fold_key: classifier}`` (explanations from :func:`explain` on the run;
            each fold's model re-scores its own test subjects).
        cohort: the subjects (for a run: the cohort the run was made on).
        explanations: explanations of the same rows (one per method).
        units: which units to perturb (those a method has; windows only for dynamic models).
    """
    if not explanations:
        raise ConfigError("faithfulness needs at least one explanation")
    ref = explanations[0]
    for e in explanations[1:]:
        if list(e.subject_ids) != list(ref.subject_ids):
            raise ConfigError("explanations must cover the same subjects in the same order")
    index = {str(s): i for i, s in enumerate(cohort.ids)}
    if isinstance(models, dict):
        if ref.folds is None:
            raise ConfigError("fold models given but the explanations carry no fold names")
        fold_rows = {}
        for row, f in enumerate(ref.folds):
            fold_rows.setdefault(str(f), []).append(row)
        missing = sorted(set(fold_rows) - set(models))
        if missing:
            raise ConfigError(f"no fold model for fold(s) {missing} (have {sorted(models)})")
        groups = [(models[f], np.asarray(rows)) for f, rows in fold_rows.items()]
    else:
        groups = [(models, np.arange(len(ref.subject_ids)))]
    rng = np.random.default_rng(seed)
    fractions = np.linspace(0.0, 1.0, n_steps + 1)
    curves: dict[tuple[str, str, str], list[np.ndarray]] = {}
    for clf, rows in groups:
        sub = cohort.subset([index[str(ref.subject_ids[r])] for r in rows])
        scorer = _Scorer(clf, sub, batch_size=batch_size)
        p0 = scorer.score("roi", np.zeros((len(rows), scorer.r), dtype=np.int64), 0, False)
        pred1 = p0 >= 0.5
        for unit in units:
            try:
                n_units = scorer.n_units(unit)
            except ConfigError:
                continue
            for e in explanations:
                a = {"roi": e.roi, "edge": e.edge, "window": e.window}[unit]
                if a is None:
                    continue
                rank = _ranks(_support(a[rows][:, :n_units], e.signed, pred1))
                for kind, c in _curves_for(scorer, unit, rank, fractions, pred1).items():
                    curves.setdefault((e.method, unit, kind), []).append(c)
            for i in range(n_random):
                rank = _ranks(rng.random((len(rows), n_units)))
                for kind, c in _curves_for(scorer, unit, rank, fractions, pred1).items():
                    curves.setdefault((f"random{i}", unit, kind), []).append(c)
    long_rows = []
    area: dict[tuple[str, str, str], float] = {}
    for (m, unit, kind), parts in curves.items():
        c = np.concatenate(parts, axis=0).mean(0)
        if kind == "deletion":
            area[(m, unit, kind)] = float(trapezoid(c[0] - c, fractions))
        else:
            area[(m, unit, kind)] = float(trapezoid(c - c[0], fractions))
        if not m.startswith("random"):
            long_rows += [{"method": m, "unit": unit, "curve": kind, "fraction": f, "score": s} for f, s in zip(fractions, c)]
    rand = {}
    for (m, unit, kind), v in area.items():
        if m.startswith("random"):
            rand.setdefault((unit, kind), []).append(v)
    for (unit, kind), vals in rand.items():
        c = np.stack([np.concatenate(curves[(f"random{i}", unit, kind)], 0).mean(0) for i in range(len(vals))]).mean(0)
        long_rows += [{"method": "random (mean)", "unit": unit, "curve": kind, "fraction": f, "score": s} for f, s in zip(fractions, c)]
    table = []
    methods = list(dict.fromkeys(e.method for e in explanations))
    for m in methods:
        for unit in units:
            if (m, unit, "deletion") not in area:
                continue
            row: dict[str, Any] = {"method": m, "unit": unit}
            beats = []
            for kind, name in (("deletion", "deletion_aoc"), ("insertion", "insertion_auc")):
                rv = np.asarray(rand[(unit, kind)])
                v = area[(m, unit, kind)]
                sd = float(rv.std(ddof=1)) if rv.size > 1 else 0.0
                row[name] = v
                row[f"{name}_random"] = float(rv.mean())
                row[f"{name}_random_sd"] = sd
                row[f"{kind}_ratio"] = v / rv.mean() if rv.mean() != 0 else float("nan")
                beats.append(v > rv.mean() + 2 * sd)
            row["faithful"] = "yes" if all(beats) else ("partly" if any(beats) else "no")
            table.append(row)
    return Faithfulness(curves=pd.DataFrame(long_rows), table=pd.DataFrame(table))
