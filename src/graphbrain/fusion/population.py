"""Population graph (Parisot et al. 2018), the honest version: inductive by default.

Subjects are nodes. Node features are the vectorised, z-scored connectome reduced to the
``n_features`` edges a ridge classifier fitted on the *training fold* finds most useful
(Parisot's recursive feature elimination, one step). Edge weights are

    W_ij = exp(-d(x_i, x_j)^2 / (2 sigma^2)) * sum_h [phenotype h agrees for i and j]

with ``d`` the correlation distance of node features, ``sigma`` the mean training
distance, and "agrees" meaning equal for categorical covariates (``sex``, ``site`` when
listed) and ``|a_i - a_j| < age_tolerance`` for age; each node keeps its ``k`` strongest
edges (symmetrised). A two-layer GCN with Chebyshev filters of order 3 (torch_geometric ``ChebConv``
with edge weights, as in the paper) classifies nodes.

What each mode assumes:

* ``mode="inductive"`` (default): the GCN is trained on the training subjects' graph only.
  At prediction each new subject joins the training graph on its own, with edges to its
  ``k`` most similar training subjects (never to other test subjects), and its class is
  read from its node. Nothing about test
  subjects is used before prediction; predictions of one test subject do not depend on
  which other subjects are being predicted.
* ``mode="transductive"``: the original recipe. The graph holds training *and* test
  subjects, so test subjects' features and phenotypes shape the graph the model is trained
  on (their labels are never read: the loss is masked to training nodes, and the test
  cohort's labels are not even passed in). Training therefore happens in
  ``predict_proba``, once per test cohort. Results are optimistic compared with a lab
  receiving one new scan at a time; report which mode you used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file as save_torch
from torch import nn

from graphbrain.connectome.static import ConnectivityTransformer
from graphbrain.data import Cohort
from graphbrain.errors import ConfigError, DataError
from graphbrain.fusion._io import read_saved, restore_transformer, save_arrays
from graphbrain.training.estimator import (
    CLASSIFIER_FILE,
    CohortClassifier,
    _write_json,
    check_rois,
    roi_fingerprint,
    safe_loader,
    static_features,
)
from graphbrain.training.splits import inner_split


class _GCN(nn.Module):
    def __init__(self, d_in: int, hidden: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        from torch_geometric.nn import ChebConv

        # Chebyshev filters of order K=3 as in Parisot et al.: the order-0 term keeps each
        # subject's own features apart from its neighbours' (a plain GCN averages them away)
        self.c1, self.c2 = ChebConv(d_in, hidden, K=3), ChebConv(hidden, n_classes, K=3)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, ei: torch.Tensor, ew: torch.Tensor) -> torch.Tensor:
        x = nn.functional.dropout(x, self.dropout, self.training)
        x = torch.relu(self.c1(x, ei, ew))
        x = nn.functional.dropout(x, self.dropout, self.training)
        return self.c2(x, ei, ew)


def _pheno_matrix(cohort: Cohort, columns: list[str]) -> list[list[Any]]:
    out = []
    for s in cohort:
        row = []
        for c in columns:
            row.append(s.site if c == "site" else s.covariates.get(c))
        out.append(row)
    return out


def _agreement(a: list[list[Any]], b: list[list[Any]], columns: list[str], age_tol: float) -> np.ndarray:
    """(len(a), len(b)) count of agreeing phenotypes; a missing value agrees with nothing."""
    m = np.zeros((len(a), len(b)))
    for j, c in enumerate(columns):
        va = [r[j] for r in a]
        vb = [r[j] for r in b]
        if c == "age":
            xa = np.asarray([np.nan if v is None else float(v) for v in va])
            xb = np.asarray([np.nan if v is None else float(v) for v in vb])
            m += (np.abs(xa[:, None] - xb[None, :]) < age_tol).astype(float)
        else:
            sa = np.asarray(["\0" if v is None else str(v) for v in va], dtype=object)
            sb = np.asarray(["\1" if v is None else str(v) for v in vb], dtype=object)
            m += (sa[:, None] == sb[None, :]).astype(float)
    return m


class PopulationGraphClassifier(CohortClassifier):
    """Subjects as nodes, phenotype x imaging similarity edges, GCN; see the module docstring."""

    model_name = "population"

    def __init__(
        self,
        *,
        mode: str = "inductive",
        phenotypes: list[str] | tuple[str, ...] = ("sex", "age"),
        n_features: int = 500,
        k: int = 10,
        age_tolerance: float = 2.0,
        hidden: int = 32,
        dropout: float = 0.3,
        epochs: int = 200,
        lr: float = 0.01,
        weight_decay: float = 5e-4,
        patience: int = 30,
        connectome: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        if mode not in ("inductive", "transductive"):
            raise ConfigError(f"population.mode must be 'inductive' or 'transductive', got {mode!r}")
        if not phenotypes:
            raise ConfigError("a population graph needs at least one phenotype to build edges (e.g. sex, age)")
        self.mode, self.phenotypes = mode, list(phenotypes)
        self.n_features, self.k, self.age_tolerance = int(n_features), int(k), float(age_tolerance)
        self.hidden, self.dropout, self.epochs, self.lr = int(hidden), float(dropout), int(epochs), float(lr)
        self.weight_decay, self.patience = float(weight_decay), int(patience)
        self.connectome = dict(connectome or {})
        self.seed = int(seed)
        self.transformer: ConnectivityTransformer | None = None
        self.mean_ = self.scale_ = self.features_ = None
        self.train_x_: np.ndarray | None = None
        self.train_y_: np.ndarray | None = None
        self.train_pheno_: list[list[Any]] | None = None
        self.train_groups_: list[str] = []
        self.sigma_: float | None = None
        self.net: _GCN | None = None
        self.classes_: np.ndarray | None = None
        self.rois_: dict[str, Any] | None = None

    # -- features and graph ---------------------------------------------------------------------
    def _features(self, cohort: Cohort, fit: bool, y: np.ndarray | None = None) -> np.ndarray:
        if fit:
            self.rois_ = roi_fingerprint(cohort)  # the atlas this model is trained on
        else:
            check_rois(self.rois_, cohort)
        c = self.connectome
        tr = ConnectivityTransformer(kind=c.get("kind", "correlation"), estimator=c.get("estimator", "ledoit_wolf"),
                                     fisher_z=bool(c.get("fisher_z", False)), vectorize=True) if fit else self.transformer
        x, tr = static_features(cohort, tr, fit=fit)
        x = np.nan_to_num(np.asarray(x, dtype=np.float64))
        if fit:
            from sklearn.linear_model import RidgeClassifier

            self.transformer = tr
            sd = x.std(axis=0)
            self.mean_, self.scale_ = x.mean(axis=0), np.where(sd > 1e-8, sd, 1.0)
            z = (x - self.mean_) / self.scale_
            coef = np.abs(np.atleast_2d(RidgeClassifier(alpha=1.0).fit(z, y).coef_)).sum(axis=0)
            self.features_ = np.sort(np.argsort(-coef)[: min(self.n_features, z.shape[1])])
        z = (x - self.mean_) / self.scale_
        return z[:, self.features_].astype(np.float32)

    @staticmethod
    def _corr_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = (a - a.mean(1, keepdims=True)) / (a.std(1, keepdims=True) + 1e-8)
        b = (b - b.mean(1, keepdims=True)) / (b.std(1, keepdims=True) + 1e-8)
        return 1.0 - (a @ b.T) / a.shape[1]

    def _weights(self, xa: np.ndarray, xb: np.ndarray, pa: list[list[Any]], pb: list[list[Any]]) -> np.ndarray:
        d = self._corr_dist(xa, xb)
        return np.exp(-(d**2) / (2 * self.sigma_**2)) * _agreement(pa, pb, self.phenotypes, self.age_tolerance)

    def _edges(self, w: np.ndarray, src_allowed: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """kNN edges: each node keeps its ``k`` strongest neighbours among ``src_allowed``; symmetrised."""
        n = w.shape[0]
        w = w.copy()
        np.fill_diagonal(w, 0.0)
        w[:, ~src_allowed] = 0.0
        k = min(self.k, int(src_allowed.sum()) - 1) if src_allowed.sum() > 1 else 1
        nbr = np.argsort(-w, axis=1)[:, :k]
        rows = np.repeat(np.arange(n), k)
        cols = nbr.ravel()
        vals = w[rows, cols]
        keep = vals > 0
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        # symmetrise: an edge i->j (j a training node) also carries j's message to i and back
        ei = np.concatenate([np.stack([rows, cols]), np.stack([cols, rows])], axis=1)
        ew = np.concatenate([vals, vals])
        return torch.as_tensor(ei, dtype=torch.long), torch.as_tensor(ew, dtype=torch.float32)

    def _graph(self, x: np.ndarray, pheno: list[list[Any]], n_train: int, test_links: bool) -> tuple[torch.Tensor, torch.Tensor]:
        w = self._weights(x, x, pheno, pheno)
        n = len(x)
        if not test_links:  # inductive: nodes beyond n_train connect to training nodes only
            w[n_train:, n_train:] = 0.0
            allowed = np.zeros(n, bool)
            allowed[:n_train] = True
            ei, ew = self._edges(w, allowed)
            return ei, ew
        return self._edges(w, np.ones(n, bool))

    def _train(self, x: np.ndarray, ei: torch.Tensor, ew: torch.Tensor, y: np.ndarray, train_idx: np.ndarray) -> None:
        torch.manual_seed(self.seed)
        y_full = np.concatenate([y, np.zeros(len(x) - len(y), np.int64)])
        groups = np.concatenate([np.asarray(self.train_groups_, dtype=object),
                                 np.asarray([f"\0new{i}" for i in range(len(x) - len(y))], dtype=object)])
        fit_idx, val_idx = inner_split(train_idx, y_full, val_fraction=0.2, seed=self.seed, groups=groups)
        xt = torch.as_tensor(x)
        yt = torch.as_tensor(y_full)
        self.net = _GCN(x.shape[1], self.hidden, len(self.classes_), self.dropout)  # type: ignore[arg-type]
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        best, best_state, wait = -np.inf, None, 0
        counts = np.bincount(y[fit_idx], minlength=len(self.classes_)).astype(float)
        cw = torch.as_tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
        fi, vi = torch.as_tensor(fit_idx), torch.as_tensor(val_idx)
        from sklearn.metrics import roc_auc_score

        for _ in range(self.epochs):
            self.net.train()
            opt.zero_grad()
            out = self.net(xt, ei, ew)
            loss = nn.functional.cross_entropy(out[fi], yt[fi], weight=cw)
            loss.backward()
            opt.step()
            self.net.eval()
            with torch.no_grad():
                p = torch.softmax(self.net(xt, ei, ew), 1)[vi, 1].numpy()
            yv = y_full[val_idx]
            score = roc_auc_score(yv, p) if len(np.unique(yv)) > 1 else -float(loss)
            if score > best + 1e-6:
                best, wait = score, 0
                best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
            else:
                wait += 1
                if wait > self.patience:
                    break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()

    # -- CohortClassifier API -------------------------------------------------------------------
    def fit(self, cohort: Cohort) -> PopulationGraphClassifier:
        y_raw = cohort.labels
        self.classes_ = np.unique(y_raw)
        if len(self.classes_) < 2:
            raise DataError("the training cohort has a single class", source=cohort.name, reason="one_class")
        y = np.searchsorted(self.classes_, y_raw).astype(np.int64)
        x = self._features(cohort, True, y)
        d = self._corr_dist(x, x)
        self.sigma_ = float(d[np.triu_indices(len(x), 1)].mean()) or 1.0
        self.train_x_, self.train_y_, self.train_pheno_ = x, y, _pheno_matrix(cohort, self.phenotypes)
        self.train_groups_ = [str(g) for g in cohort.participants]  # early stopping keeps a person on one side
        if self.mode == "inductive":
            ei, ew = self._graph(x, self.train_pheno_, len(x), test_links=True)
            self._train(x, ei, ew, y, np.arange(len(x)))
        return self

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        if self.train_x_ is None:
            raise ConfigError("population classifier is not fitted; call fit() first")
        xt = self._features(cohort, False)
        x = np.concatenate([self.train_x_, xt])
        pheno = self.train_pheno_ + _pheno_matrix(cohort, self.phenotypes)  # type: ignore[operator]
        n_train = len(self.train_x_)
        if self.mode == "transductive":
            ei, ew = self._graph(x, pheno, n_train, test_links=True)
            self._train(x, ei, ew, self.train_y_, np.arange(n_train))  # type: ignore[arg-type]
            with torch.no_grad():
                out = torch.softmax(self.net(torch.as_tensor(x), ei, ew), 1).numpy()  # type: ignore[misc]
            return out[n_train:]
        # Inductive: each new subject joins the training graph on its own (edges to its k
        # nearest training subjects), so its prediction depends on the training graph and
        # itself only, never on which other subjects are predicted with it.
        probs = []
        with torch.no_grad():
            for i in range(len(xt)):
                xi = np.concatenate([self.train_x_, xt[i : i + 1]])
                ei, ew = self._graph(xi, self.train_pheno_ + [pheno[n_train + i]], n_train, test_links=False)
                probs.append(torch.softmax(self.net(torch.as_tensor(xi), ei, ew), 1)[-1].numpy())  # type: ignore[misc]
        return np.stack(probs) if probs else np.zeros((0, len(self.classes_)))  # type: ignore[arg-type]

    def save(self, directory: str | Path) -> None:
        if self.net is None or self.train_x_ is None:
            raise ConfigError("population classifier is not fitted (a transductive one is trained at prediction)")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_torch({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(d / "weights.safetensors"))
        arrays = {"mean": self.mean_, "scale": self.scale_, "features": self.features_.astype(np.int64),
                  "train_x": self.train_x_, "train_y": self.train_y_}
        tparams = save_arrays(d, arrays, self.transformer)
        _write_json(d / CLASSIFIER_FILE, {
            "type": "population", "model": "population", "mode": self.mode, "phenotypes": self.phenotypes,
            "n_features": self.n_features, "k": self.k, "age_tolerance": self.age_tolerance, "hidden": self.hidden,
            "dropout": self.dropout, "epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay,
            "patience": self.patience, "connectome": self.connectome, "seed": self.seed, "sigma": self.sigma_,
            "classes": np.asarray(self.classes_).tolist(), "train_pheno": self.train_pheno_, "train_groups": self.train_groups_, "transformer": tparams,
            "rois": self.rois_,
        })

    @classmethod
    @safe_loader
    def load(cls, directory: str | Path) -> PopulationGraphClassifier:
        d = Path(directory)
        meta, arrays, weights = read_saved(d, "population")
        keys = ("mode", "phenotypes", "n_features", "k", "age_tolerance", "hidden", "dropout", "epochs", "lr",
                "weight_decay", "patience", "connectome", "seed")
        clf = cls(**{k: meta[k] for k in keys})
        clf.sigma_, clf.classes_, clf.train_pheno_ = meta["sigma"], np.asarray(meta["classes"]), meta["train_pheno"]
        clf.rois_ = meta.get("rois")
        clf.train_groups_ = meta.get("train_groups") or [str(i) for i in range(len(meta["train_pheno"]))]
        clf.mean_, clf.scale_, clf.features_ = arrays["mean"], arrays["scale"], arrays["features"]
        clf.train_x_, clf.train_y_ = arrays["train_x"], arrays["train_y"]
        clf.transformer = restore_transformer(meta["transformer"], arrays)
        clf.net = _GCN(clf.train_x_.shape[1], clf.hidden, len(clf.classes_), clf.dropout)
        clf.net.load_state_dict(weights, strict=True)
        clf.net.eval()
        return clf
