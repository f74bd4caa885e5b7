"""Fusion of the connectome with imaging-encoder embeddings, phenotypes and KG ROI features.

Modalities (``B`` subjects, ``R`` ROIs, ``H`` hidden size)::

    connectome  h_c = branch(FC)                      (B, H)   always present
                branch = "logreg" (default): Linear(s), s = the decision score of a logistic
                regression on vec(z-scored FC) fitted in the training fold (training
                subjects get out-of-fold scores from an inner 5-fold split, so the fusion
                head never sees over-fitted scores: stacking); "linear": Linear(vec(z-FC))
                trained end to end; or any registered torch static-FC model built with
                n_classes=H (its "logits" are the representation)
    KG prior    a_r = softmax_r(w . kg_r),  h_k = sum_r a_r Linear(z-FC row r)   (B, H)
                (each ROI's KG embedding kg_r sets a prior on which ROIs to read)
    image       h_i = MLP(standardised embedding)     (B, H)   mask m_i
    phenotype   h_p = MLP(in-fold encoded covariates)  (B, H)   mask m_p

Strategies (``strategy``):

* ``concat``:  logits = MLP([h_c, h_k, m_i h_i, m_p h_p, m_i, m_p])
* ``gated``:   logits = sum_k softmax_k(g_k(h_k) masked to present modalities) head_k(h_k);
               the gate weights are recorded per subject (``attention["modality_weight"]``)
* ``cross_attention``: ROI tokens t_r = Linear(z-FC row r) (+ Linear(kg_r)) attend over
               context tokens [null, h_i, h_p] (missing ones masked out); logits =
               MLP([h_c, mean_r attended t_r]); weights recorded (``"cross_attention"`` (B, R, 3))

Missing modalities: during training each present non-connectome modality is dropped
with probability ``modality_dropout`` (so the model learns to do without it); at
inference the masks say what is there. Nothing is imputed: a missing modality
contributes exactly zero and its mask is 0. The per-subject mask is recorded
(``attention["modality_mask"]`` (B, 3): connectome, image, phenotype).
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
from graphbrain.fusion.embeddings import EmbeddingTable, read_embeddings
from graphbrain.fusion.phenotypes import PhenotypeEncoder
from graphbrain.models import get_model_spec
from graphbrain.models.base import ModelOutput
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
from graphbrain.training.trainer import TensorSet, Trainer, train_config

STRATEGIES = ("concat", "gated", "cross_attention")
MODALITIES = ("connectome", "image", "phenotype")


def _mlp(d_in: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden))


class FusionNet(nn.Module):
    """See the module docstring for the equations. Input: a dict batch, output ModelOutput."""

    def __init__(
        self,
        *,
        n_rois: int,
        n_classes: int = 2,
        hidden: int = 32,
        strategy: str = "gated",
        branch: nn.Module | None = None,
        image_dim: int = 0,
        pheno_dim: int = 0,
        roi_features: np.ndarray | None = None,
        modality_dropout: float = 0.3,
        dropout: float = 0.2,
        score_branch: bool = False,
    ) -> None:
        super().__init__()
        if strategy not in STRATEGIES:
            raise ConfigError(f"fusion.strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.strategy, self.hidden, self.n_rois = strategy, hidden, n_rois
        self.modality_dropout = float(modality_dropout)
        self.branch = branch
        n_edges = n_rois * (n_rois - 1) // 2
        self.score = nn.Linear(1, hidden) if score_branch else None
        self.linear = nn.Linear(n_edges, hidden) if branch is None and not score_branch else None
        iu = torch.triu_indices(n_rois, n_rois, 1)
        self.register_buffer("iu", iu, persistent=False)
        self.row = nn.Linear(n_rois, hidden)
        if roi_features is not None and roi_features.size:
            self.register_buffer("kg", torch.as_tensor(roi_features, dtype=torch.float32))
            self.kg_prior = nn.Linear(roi_features.shape[1], 1)
            self.kg_token = nn.Linear(roi_features.shape[1], hidden)
        else:
            self.kg = None
            self.kg_prior = self.kg_token = None
        self.image = _mlp(image_dim, hidden, dropout) if image_dim else None
        self.pheno = _mlp(pheno_dim, hidden, dropout) if pheno_dim else None
        n_conn = 2 if self.kg is not None else 1
        if strategy == "concat":
            self.head = nn.Sequential(nn.Linear(hidden * (n_conn + 2) + 2, hidden), nn.GELU(),
                                      nn.Dropout(dropout), nn.Linear(hidden, n_classes))
        elif strategy == "gated":
            self.heads = nn.ModuleList([nn.Linear(hidden, n_classes) for _ in range(n_conn + 2)])
            self.gates = nn.ModuleList([nn.Linear(hidden, 1) for _ in range(n_conn + 2)])
        else:
            self.null = nn.Parameter(torch.zeros(1, 1, hidden))
            self.attn = nn.MultiheadAttention(hidden, num_heads=2, batch_first=True, dropout=dropout)
            self.head = nn.Sequential(nn.Linear(hidden * (n_conn + 1), hidden), nn.GELU(),
                                      nn.Dropout(dropout), nn.Linear(hidden, n_classes))
        self.n_classes = n_classes

    def _masks(self, batch: dict[str, torch.Tensor], b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        def get(key: str, enabled: bool) -> torch.Tensor:
            if not enabled or key not in batch:
                return torch.zeros(b, device=device)
            m = batch[key].float()
            if self.training and self.modality_dropout > 0:
                m = m * (torch.rand(b, device=device) >= self.modality_dropout).float()
            return m

        return get("image_mask", self.image is not None), get("pheno_mask", self.pheno is not None)

    def forward(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        fc = batch["fc"]
        b, device = fc.shape[0], fc.device
        att: dict[str, torch.Tensor] = {}
        aux = None
        if self.score is not None:
            h_conn = self.score(batch["conn_score"])
        elif self.branch is None:
            h_conn = self.linear(fc[:, self.iu[0], self.iu[1]])
        else:
            out = self.branch(batch)
            h_conn, aux = out.logits, out.aux_loss
        reps = [h_conn]
        rows = self.row(fc)  # (B, R, H) ROI tokens
        if self.kg is not None:
            prior = torch.softmax(self.kg_prior(self.kg).squeeze(-1), dim=0)  # (R,)
            reps.append(torch.einsum("r,brh->bh", prior, rows))
            att["kg_prior"] = prior.unsqueeze(0).expand(b, -1)
        m_i, m_p = self._masks(batch, b, device)
        zeros = torch.zeros(b, self.hidden, device=device)
        h_i = self.image(batch["image"]) if self.image is not None and "image" in batch else zeros
        h_p = self.pheno(batch["pheno"]) if self.pheno is not None and "pheno" in batch else zeros
        h_i, h_p = h_i * m_i[:, None], h_p * m_p[:, None]
        att["modality_mask"] = torch.stack([torch.ones(b, device=device), m_i, m_p], dim=1)
        if self.strategy == "concat":
            logits = self.head(torch.cat([*reps, h_i, h_p, m_i[:, None], m_p[:, None]], dim=1))
        elif self.strategy == "gated":
            hs = [*reps, h_i, h_p]
            present = torch.stack([torch.ones(b, device=device)] * len(reps) + [m_i, m_p], dim=1)
            g = torch.cat([gate(h) for gate, h in zip(self.gates, hs)], dim=1)
            g = g.masked_fill(present < 0.5, float("-inf"))
            w = torch.softmax(g, dim=1)  # (B, K)
            logits = sum(w[:, k : k + 1] * head(h) for k, (head, h) in enumerate(zip(self.heads, hs)))
            att["modality_weight"] = w
        else:
            tokens = rows + (self.kg_token(self.kg)[None] if self.kg is not None else 0.0)
            ctx = torch.cat([self.null.expand(b, 1, -1), h_i[:, None], h_p[:, None]], dim=1)
            pad = torch.stack([torch.zeros(b, device=device), 1 - m_i, 1 - m_p], dim=1) > 0.5
            attended, weights = self.attn(tokens, ctx, ctx, key_padding_mask=pad, need_weights=True)
            att["cross_attention"] = weights  # (B, R, 3)
            logits = self.head(torch.cat([*reps, attended.mean(dim=1)], dim=1))
        return ModelOutput(logits=logits, attention=att, aux_loss=aux)


class FusionClassifier(CohortClassifier):
    """Connectome + image embeddings + phenotypes (+ KG ROI features), fitted in-fold.

    Args:
        strategy: ``concat``, ``gated`` (default) or ``cross_attention``.
        branch: the connectome branch: ``logreg`` (default: an in-fold logistic regression
            on vectorised z-scored FC, stacked through out-of-fold scores), ``linear``
            (trained end to end), a registered torch model taking static FC
            (``brainnetcnn``, ``bnt``, ``gin`` ...) built with ``n_classes=hidden`` as an
            encoder, or any other registered model (``stagin`` on dynamic FC, ``svm``,
            ``ensemble``), which enters through its log-odds, out-of-fold from an inner
            3-fold split of the training cohort (``branch_params`` may hold its own
            ``connectome`` and ``train`` sections).
        branch_params: keyword arguments of the branch model.
        image: an :class:`EmbeddingTable` or a path :func:`read_embeddings` reads;
            subjects absent from it are "image missing". ``None``: no image modality.
        phenotypes: covariate names (``["age", "sex"]``); ``None`` or ``[]``: none.
        roi_features: ``(R, D)`` KG features per ROI (see
            :func:`graphbrain.fusion.kg_features.kg_roi_features`) or ``None``.
        kg_roi: settings of :func:`~graphbrain.fusion.kg_features.kg_roi_features`
            (``labels``: atlas label table, ``embedding``, ``mapping``, ``dim``, ``epochs``)
            to compute ``roi_features`` from the training cohort's ROI names at ``fit``;
            the mapping table and its coverage are kept (``kg_mapping_``, ``kg_coverage_``).
        modality_dropout: probability of hiding a present modality during training.
        hidden: width of every modality representation.
        connectome, train, seed: as for the torch classifiers.
    """

    model_name = "fusion"

    def __init__(
        self,
        *,
        strategy: str = "gated",
        branch: str = "logreg",
        branch_params: dict[str, Any] | None = None,
        image: EmbeddingTable | str | Path | None = None,
        phenotypes: list[str] | tuple[str, ...] | None = ("age", "sex"),
        roi_features: np.ndarray | None = None,
        kg_roi: dict[str, Any] | None = None,
        modality_dropout: float = 0.3,
        hidden: int = 32,
        connectome: dict[str, Any] | None = None,
        train: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"fusion.strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.stacked = False
        if branch not in ("linear", "logreg"):
            spec = get_model_spec(branch)
            if spec.kind == "fusion":
                raise ConfigError(f"fusion branch {branch!r} is itself multimodal; name a connectome model")
            # static-FC torch models are trained end to end as encoders; any other registered
            # model (stagin on dynamic FC, svm, ensemble ...) enters through stacking
            self.stacked = not (spec.kind == "torch" and spec.input == "static_fc")
        if not 0.0 <= modality_dropout < 1.0:
            raise ConfigError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        self.strategy = strategy
        self.branch = branch
        self.branch_params = dict(branch_params or {})
        self.image_source = None if image is None or isinstance(image, EmbeddingTable) else str(image)
        self.image: EmbeddingTable | None = read_embeddings(image) if self.image_source else image  # type: ignore[assignment]
        self.phenotypes = list(phenotypes or [])
        self.roi_features = None if roi_features is None else np.asarray(roi_features, dtype=np.float32)
        self.kg_roi = dict(kg_roi) if kg_roi else None
        self.kg_mapping_: Any = None
        self.kg_coverage_: dict[str, Any] | None = None
        self.modality_dropout = float(modality_dropout)
        self.hidden = int(hidden)
        self.connectome = dict(connectome or {})
        self.train = {"epochs": 60, "patience": 15, "lr": 3e-3, "batch_size": 32, **dict(train or {})}
        self.train_cfg = train_config(self.train)
        self.seed = int(seed)
        self.transformer: ConnectivityTransformer | None = None
        self.pheno_enc: PhenotypeEncoder | None = None
        self.fc_mean_ = self.fc_scale_ = self.img_mean_ = self.img_scale_ = None
        self.stack_coef_: np.ndarray | None = None
        self.branch_clf_: Any = None
        self.rois_: dict[str, Any] | None = None
        self.stack_intercept_: float = 0.0
        self.model: FusionNet | None = None
        self.classes_: np.ndarray | None = None
        self.n_rois_: int | None = None
        self._history: list[dict[str, Any]] = []

    # -- inputs ---------------------------------------------------------------------------
    def set_image(self, image: EmbeddingTable | str | Path | None) -> None:
        """Use another embedding table at prediction (e.g. one that holds the new subjects)."""
        self.image = read_embeddings(image) if isinstance(image, str | Path) else image

    def _transformer(self) -> ConnectivityTransformer:
        c = self.connectome
        return ConnectivityTransformer(kind=c.get("kind", "correlation"), estimator=c.get("estimator", "ledoit_wolf"),
                                       fisher_z=bool(c.get("fisher_z", False)), vectorize=False,
                                       cache_dir=c.get("cache_dir"))

    def _stack_scores(self, vec: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        """Logistic-regression decision scores; out-of-fold (inner 5-fold) when fitting."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        if y is None:
            return vec @ self.stack_coef_ + self.stack_intercept_
        oof = np.zeros(len(vec))
        k = int(min(5, np.bincount(y).min()))
        if k < 2:
            raise DataError("stacking the logreg branch needs >= 2 training subjects per class", reason="too_few")
        for tr, te in StratifiedKFold(k, shuffle=True, random_state=self.seed).split(vec, y):
            oof[te] = LogisticRegression(max_iter=2000).fit(vec[tr], y[tr]).decision_function(vec[te])
        full = LogisticRegression(max_iter=2000).fit(vec, y)
        self.stack_coef_, self.stack_intercept_ = full.coef_.ravel(), float(full.intercept_[0])
        return oof

    def _branch_classifier(self) -> CohortClassifier:
        from graphbrain.training import build_classifier

        params = dict(self.branch_params)
        conn = {**self.connectome, **dict(params.pop("connectome", {}) or {})}
        train = {**{k: v for k, v in self.train.items() if k not in ("epochs", "patience", "lr", "batch_size")},
                 **dict(params.pop("train", {}) or {})}
        return build_classifier(self.branch, model_params=params, connectome=conn, train=train, seed=self.seed)

    @staticmethod
    def _log_odds(p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=np.float64)[:, 1], 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    def _stacked_scores(self, cohort: Cohort, y: np.ndarray | None) -> np.ndarray:
        """Any registered model as the connectome branch: its log-odds, out-of-fold (inner
        3-fold of the training cohort) when fitting, from the model refitted on the whole
        training cohort at prediction."""
        from sklearn.model_selection import StratifiedKFold

        if y is None:
            return self._log_odds(self.branch_clf_.predict_proba(cohort))
        k = int(min(3, np.bincount(y).min()))
        if k < 2:
            raise DataError("stacking the connectome branch needs >= 2 training subjects per class", reason="too_few")
        oof = np.zeros(len(cohort))
        for tr, te in StratifiedKFold(k, shuffle=True, random_state=self.seed).split(np.zeros(len(y)), y):
            inner = self._branch_classifier().fit(cohort.subset(tr))
            oof[te] = self._log_odds(inner.predict_proba(cohort.subset(te)))
        self.branch_clf_ = self._branch_classifier().fit(cohort)
        return oof

    def _inputs(self, cohort: Cohort, *, fit: bool, y: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if fit:
            self.rois_ = roi_fingerprint(cohort)  # the atlas this model is trained on
        else:
            check_rois(self.rois_, cohort)  # refuse another atlas, even with the same ROI count
        fc, tr = static_features(cohort, self._transformer() if fit else self.transformer, fit=fit, vectorize=False)
        fc = np.nan_to_num(np.asarray(fc, dtype=np.float64))
        if fit:
            self.transformer, self.n_rois_ = tr, fc.shape[-1]
            sd = fc.std(axis=0)
            self.fc_mean_, self.fc_scale_ = fc.mean(axis=0), np.where(sd > 1e-8, sd, 1.0)
        if fc.shape[-1] != self.n_rois_:
            raise DataError(f"connectomes have {fc.shape[-1]} ROIs, the model was trained on {self.n_rois_}", reason="roi_mismatch")
        z = (fc - self.fc_mean_) / self.fc_scale_
        r = z.shape[-1]
        z[:, np.arange(r), np.arange(r)] = 0.0
        out = {"fc": z.astype(np.float32)}
        if self.branch == "logreg":
            vec = z[:, *np.triu_indices(r, 1)]
            out["conn_score"] = self._stack_scores(vec, y if fit else None)[:, None].astype(np.float32)
        elif self.stacked:
            out["conn_score"] = self._stacked_scores(cohort, y if fit else None)[:, None].astype(np.float32)
        n = len(cohort)
        if self.image is None and not fit and self.img_mean_ is not None:
            raise ConfigError(
                "this fusion model was trained with an image-embedding modality but has no embedding table "
                "now (it was given in memory, or its file moved): pass it with set_image(table_or_path); "
                "subjects absent from the table are then treated as missing"
            )
        if self.image is not None:
            vals, present = self.image.align(cohort.ids)
            if fit:
                if present.sum() < 2:
                    raise DataError("fewer than 2 training subjects have an image embedding", source=cohort.name,
                                    reason="missing_modality")
                sd = vals[present].std(axis=0)
                self.img_mean_, self.img_scale_ = vals[present].mean(axis=0), np.where(sd > 1e-8, sd, 1.0)
            vals = np.where(present[:, None], (vals - self.img_mean_) / self.img_scale_, 0.0)
            out["image"], out["image_mask"] = vals.astype(np.float32), present.astype(np.float32)
        if self.phenotypes:
            if fit:
                self.pheno_enc = PhenotypeEncoder(self.phenotypes).fit(cohort)
            vals, present, _ = self.pheno_enc.transform(cohort)  # type: ignore[union-attr]
            out["pheno"], out["pheno_mask"] = vals, present.astype(np.float32)
        if "image" not in out and "pheno" not in out and self.roi_features is None and n:
            pass  # connectome only: allowed (a baseline row in comparisons)
        return out

    def _build(self, image_dim: int, pheno_dim: int) -> FusionNet:
        branch = None
        if self.branch not in ("linear", "logreg") and not self.stacked:
            spec = get_model_spec(self.branch)
            branch = spec.builder(n_rois=self.n_rois_, n_windows=None, n_classes=self.hidden, **self.branch_params)
        if self.roi_features is not None and self.roi_features.shape[0] != self.n_rois_:
            raise DataError(f"roi_features has {self.roi_features.shape[0]} rows for {self.n_rois_} ROIs", reason="roi_mismatch")
        return FusionNet(n_rois=int(self.n_rois_), n_classes=len(self.classes_), hidden=self.hidden,  # type: ignore[arg-type]
                         strategy=self.strategy, branch=branch, image_dim=image_dim, pheno_dim=pheno_dim,
                         roi_features=self.roi_features, modality_dropout=self.modality_dropout,
                         score_branch=self.branch == "logreg" or self.stacked)

    # -- CohortClassifier API ---------------------------------------------------------------
    def fit(self, cohort: Cohort) -> FusionClassifier:
        y_raw = cohort.labels
        self.classes_ = np.unique(y_raw)
        if len(self.classes_) < 2:
            raise DataError("the training cohort has a single class", source=cohort.name, reason="one_class")
        y = np.searchsorted(self.classes_, y_raw).astype(np.int64)
        if self.kg_roi and self.roi_features is None:
            from graphbrain.fusion.kg_features import kg_roi_features, mapping_coverage

            names = cohort.roi_names or [str(i) for i in range(cohort.n_rois)]
            self.roi_features, self.kg_mapping_ = kg_roi_features(names, seed=self.seed, **self.kg_roi)
            self.kg_coverage_ = mapping_coverage(self.kg_mapping_)
        x = self._inputs(cohort, fit=True, y=y)
        data = TensorSet(x, y, np.asarray(cohort.ids))
        fit_idx, val_idx = inner_split(np.arange(len(cohort)), y, val_fraction=float(self.train_cfg["val_fraction"]),
                                       seed=self.seed, groups=cohort.participants)
        torch.manual_seed(self.seed)
        self.model = self._build(x["image"].shape[1] if "image" in x else 0, x["pheno"].shape[1] if "pheno" in x else 0)
        res = Trainer(self.train, seed=self.seed).fit(self.model, data.subset(fit_idx), data.subset(val_idx),
                                                      n_classes=len(self.classes_))
        self._history = res.history
        return self

    def _predict(self, cohort: Cohort, attention: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self.model is None:
            raise ConfigError("fusion classifier is not fitted; call fit() first")
        x = self._inputs(cohort, fit=False)
        data = TensorSet(x, np.zeros(len(cohort), dtype=np.int64), np.asarray(cohort.ids))
        cfg = {**self.train, "progress": False, "log_dir": None}
        return Trainer(cfg, seed=self.seed).predict(self.model, data, attention=attention)

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        return self._predict(cohort, attention=False)[0]

    def explain(self, cohort: Cohort) -> dict[str, np.ndarray]:
        """``modality_mask`` (N, 3) and the strategy's weights (``modality_weight`` / ``cross_attention``)."""
        return self._predict(cohort, attention=True)[1]

    def prediction_columns(self, cohort: Cohort) -> dict[str, np.ndarray]:
        """Per-prediction record of which modalities were present (for predictions.parquet)."""
        x = self._inputs(cohort, fit=False)
        return {
            "has_image": (x["image_mask"] > 0) if "image_mask" in x else np.zeros(len(cohort), bool),
            "has_phenotype": (x["pheno_mask"] > 0) if "pheno_mask" in x else np.zeros(len(cohort), bool),
        }

    def history(self) -> list[dict[str, Any]]:
        return list(self._history)

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        if self.model is None:
            raise ConfigError("fusion classifier is not fitted")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_torch({k: v.detach().cpu().contiguous().clone() for k, v in self.model.state_dict().items()},
                   str(d / "weights.safetensors"))
        arrays = {"fc_mean": self.fc_mean_, "fc_scale": self.fc_scale_}
        if self.img_mean_ is not None:
            arrays.update(img_mean=self.img_mean_, img_scale=self.img_scale_)
        if self.roi_features is not None:
            arrays["roi_features"] = self.roi_features
        if self.stack_coef_ is not None:
            arrays.update(stack_coef=self.stack_coef_, stack_intercept=np.asarray([self.stack_intercept_]))
        tparams = save_arrays(d, arrays, self.transformer)
        if self.stacked:
            self.branch_clf_.save(d / "branch")
        _write_json(d / CLASSIFIER_FILE, {
            "type": "fusion", "model": "fusion", "strategy": self.strategy, "branch": self.branch,
            "branch_params": self.branch_params, "image_source": self.image_source, "phenotypes": self.phenotypes,
            "modality_dropout": self.modality_dropout, "hidden": self.hidden, "connectome": self.connectome,
            "train": self.train, "seed": self.seed, "n_rois": self.n_rois_, "classes": np.asarray(self.classes_).tolist(),
            "image_dim": self.model.image[0].in_features if self.model.image is not None else 0,
            "pheno_dim": self.model.pheno[0].in_features if self.model.pheno is not None else 0,
            "pheno_encoder": self.pheno_enc.get_state() if self.pheno_enc else None, "transformer": tparams,
            "kg_roi": self.kg_roi, "kg_coverage": self.kg_coverage_, "rois": self.rois_,
            "history": self._history,
        })

    @classmethod
    @safe_loader
    def load(cls, directory: str | Path) -> FusionClassifier:
        d = Path(directory)
        meta, arrays, weights = read_saved(d, "fusion")
        image = meta["image_source"] if meta["image_source"] and Path(meta["image_source"]).exists() else None
        clf = cls(strategy=meta["strategy"], branch=meta["branch"], branch_params=meta["branch_params"], image=image,
                  phenotypes=meta["phenotypes"], roi_features=arrays.get("roi_features"),
                  modality_dropout=meta["modality_dropout"], hidden=meta["hidden"], connectome=meta["connectome"],
                  train=meta["train"], seed=meta["seed"])
        clf.image_source = meta["image_source"]
        clf.kg_roi, clf.kg_coverage_ = meta.get("kg_roi"), meta.get("kg_coverage")
        clf.rois_ = meta.get("rois")
        clf.n_rois_, clf.classes_ = meta["n_rois"], np.asarray(meta["classes"])
        clf.fc_mean_, clf.fc_scale_ = arrays["fc_mean"], arrays["fc_scale"]
        clf.img_mean_, clf.img_scale_ = arrays.get("img_mean"), arrays.get("img_scale")
        if "stack_coef" in arrays:
            clf.stack_coef_, clf.stack_intercept_ = arrays["stack_coef"], float(arrays["stack_intercept"][0])
        if meta["pheno_encoder"]:
            clf.pheno_enc = PhenotypeEncoder.from_state(meta["pheno_encoder"])
        if clf.stacked:
            from graphbrain.training import load_classifier

            clf.branch_clf_ = load_classifier(d / "branch")
        clf.transformer = restore_transformer(meta["transformer"], arrays)
        clf._history = meta.get("history", [])
        model = clf._build(int(meta["image_dim"]), int(meta["pheno_dim"]))
        model.load_state_dict(weights, strict=True)
        model.eval()
        clf.model = model
        return clf
