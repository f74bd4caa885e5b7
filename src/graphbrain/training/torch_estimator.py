"""TorchClassifier: a registered torch model as a :class:`CohortClassifier`.

``fit(cohort)`` (the cohort is a training fold):

1. inputs: ``input="dynamic_fc"`` models get sliding-window FC of whole scans of any
   length (:class:`~graphbrain.training.trainer.DynamicFCSet`): window
   ``connectome.window`` TRs (default 20) and stride ``connectome.stride`` (default 10),
   or ``window_seconds`` / ``stride_seconds`` converted with each subject's own TR;
   batches are zero-padded with ``batch["mask"]`` ``(B, W)`` (True = real window).
   Training crops: ``train.crop_length`` TRs (default null: the whole scan), from a
   random start (``connectome.random_crop``), ``train.crops_per_subject`` per epoch;
   ``connectome.n_timepoints`` (``min`` or an int) crops every scan to a common length
   instead. Prediction averages class probabilities over the crops chosen by
   ``connectome.predict_crops`` (config ``predict.crops``; default ``cover``: the whole
   scan, or overlapping crops of the trained window count when it is longer). They also
   get the static FC below as ``batch["fc"]`` (linear path, ``static_fc`` node features).
   ``input="static_fc"`` models get ``(N, R, R)`` connectomes from a
   :class:`~graphbrain.connectome.static.ConnectivityTransformer` fitted on this
   training cohort only (or the subjects' precomputed FC), then z-scored per edge with
   the mean / sd of that training cohort (``connectome.standardize``, default on;
   diagonal set to 0; saved as ``scaler.safetensors``). Raw correlations (mean ~0.3,
   diagonal 1) made the static models' inputs badly scaled;
2. an inner validation split is carved from the training cohort only
   (:func:`graphbrain.training.splits.inner_split`) for early stopping;
3. the :class:`~graphbrain.training.trainer.Trainer` trains and keeps the
   best-validation weights.

``save(dir)`` writes ``classifier.json`` (model name and parameters, connectome and
train config, ``n_rois``, ``n_windows``, ``n_timepoints``, classes, transformer
parameters), ``weights.safetensors`` (model state) and, when a fitted connectome
transformer has state, ``transformer.safetensors``. :meth:`TorchClassifier.load`
rebuilds the model from the JSON and loads the tensors; nothing is unpickled.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file as load_torch
from safetensors.torch import save_file as save_torch

from graphbrain.connectome.dynamic import n_windows as count_windows
from graphbrain.connectome.dynamic import seconds_to_timepoints
from graphbrain.connectome.static import ConnectivityTransformer
from graphbrain.data import Cohort
from graphbrain.errors import ConfigError, DataError
from graphbrain.models import get_model_spec
from graphbrain.training.estimator import (
    CLASSIFIER_FILE,
    CohortClassifier,
    _write_json,
    check_rois,
    check_state,
    roi_fingerprint,
    safe_loader,
    static_features,
)
from graphbrain.training.splits import inner_split
from graphbrain.training.trainer import (
    PREDICT_CROPS,
    DynamicFCSet,
    TensorSet,
    Trainer,
    split_meta,
    train_config,
)

WEIGHTS_FILE = "weights.safetensors"
TRANSFORMER_FILE = "transformer.safetensors"
SCALER_FILE = "scaler.safetensors"
CONNECTOME_DEFAULTS: dict[str, Any] = {
    "kind": "correlation",
    "estimator": "ledoit_wolf",
    "engine": "graphbrain",  # static FC: graphbrain's batched kernels or nilearn
    "fisher_z": False,
    "window": 20,
    "window_seconds": None,
    "stride": 10,
    "stride_seconds": None,
    "predict_crops": "cover",
    "n_timepoints": None,
    "top_percent": None,
    "random_crop": True,
    "backend": "torch",
    "cache_dir": None,
    "standardize": True,
}


class TorchClassifier(CohortClassifier):
    """Fit / predict / explain / save a registered torch model on cohorts.

    Args:
        model_name: a registered model with ``kind="torch"`` (``stagin``, ``bnt`` ...).
        model_params: keyword arguments of the model builder (``hidden=64`` ...).
        connectome: connectome settings (see :data:`CONNECTOME_DEFAULTS`).
        train: trainer settings (see :data:`graphbrain.training.trainer.TRAIN_DEFAULTS`).
        seed: seeds the inner split, initialisation and batch order.
    """

    def __init__(
        self,
        model_name: str,
        *,
        model_params: dict[str, Any] | None = None,
        connectome: dict[str, Any] | None = None,
        train: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        spec = get_model_spec(model_name)
        if spec.kind != "torch":
            raise ConfigError(f"model {model_name!r} is not a torch model (kind={spec.kind!r})")
        self.model_name = model_name
        self._spec = spec
        self.model_params = dict(model_params or {})
        conn = dict(connectome or {})
        unknown = sorted(set(conn) - set(CONNECTOME_DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown connectome key(s) {unknown}; valid keys: {sorted(CONNECTOME_DEFAULTS)}")
        self.connectome = conn
        self.train = dict(train or {})
        self.train_cfg = train_config(self.train)  # validates keys now, not after loading data
        self.seed = int(seed)
        self.model: torch.nn.Module | None = None
        self.transformer: ConnectivityTransformer | None = None
        self.fc_mean_: np.ndarray | None = None
        self.fc_scale_: np.ndarray | None = None
        self.classes_: np.ndarray | None = None
        self.n_rois_: int | None = None
        self.n_windows_: int | None = None
        self.n_timepoints_: int | None = None
        self.window_: int | None = None
        self.stride_: int | None = None
        self._history: list[dict[str, Any]] = []
        self.rois_: dict[str, Any] | None = None
        self.val_ids_: list[str] = []

    # -- configuration -------------------------------------------------------------------
    def _conn(self, key: str) -> Any:
        v = self.connectome.get(key)
        return CONNECTOME_DEFAULTS[key] if v is None else v

    def _build_model(self) -> torch.nn.Module:
        params = dict(self.model_params)
        sig = inspect.signature(self._spec.builder).parameters
        if "top_percent" in sig and "top_percent" not in params and self.connectome.get("top_percent") is not None:
            params["top_percent"] = float(self.connectome["top_percent"])
        has_var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.values())
        unknown = sorted(set(params) - set(sig)) if not has_var_kw else []
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {unknown} for model {self.model_name!r}; "
                f"valid: {sorted(set(sig) - {'n_rois', 'n_windows', 'n_classes'})}"
            )
        return self._spec.builder(
            n_rois=self.n_rois_, n_windows=self.n_windows_, n_classes=len(self.classes_), **params
        )

    def _new_transformer(self) -> ConnectivityTransformer:
        return ConnectivityTransformer(
            kind=self._conn("kind"),
            estimator=self._conn("estimator"),
            engine=self._conn("engine"),
            fisher_z=bool(self._conn("fisher_z")),
            vectorize=False,
            cache_dir=self.connectome.get("cache_dir"),
        )

    def _trainer(self, *, inference: bool = False) -> Trainer:
        cfg = dict(self.train)
        if inference:
            cfg["progress"] = False
            cfg["log_dir"] = None
            if str(cfg.get("device", "auto")).startswith("cuda") and not torch.cuda.is_available():
                cfg["device"] = "auto"  # a model trained on a GPU predicts on a CPU-only machine
        return Trainer(cfg, seed=self.seed)

    # -- inputs --------------------------------------------------------------------------
    def _dataset(self, cohort: Cohort, labels: np.ndarray, *, fit: bool) -> TensorSet | DynamicFCSet:
        if fit:
            self.rois_ = roi_fingerprint(cohort)  # the atlas this model is trained on
        else:
            check_rois(self.rois_, cohort)  # refuse another atlas, even with the same ROI count
        ids = np.asarray(cohort.ids)
        if self._spec.input == "dynamic_fc":
            ts = cohort.timeseries()
            win, st = self._subject_windows(cohort)
            for s, w in zip(cohort, win):
                if s.n_timepoints < w:
                    raise DataError(
                        f"scan has {s.n_timepoints} time points, fewer than one window of {w} "
                        f"(connectome.window / window_seconds); it cannot be windowed",
                        source=s.id,
                        reason="too_short",
                    )
            if fit:
                self._fit_dynamic(cohort, ts, win, st)
            static = self._static_fc(cohort, fit=fit)
            return DynamicFCSet(
                ts, labels, ids, window=win, stride=st, crop_length=self.n_timepoints_,
                n_windows_max=self.n_windows_, random_crop=bool(self._conn("random_crop")), static=static,
                predict_crops=str(self._conn("predict_crops")), fisher_z=bool(self._conn("fisher_z")),
            )
        return TensorSet({"fc": self._static_fc(cohort, fit=fit)}, labels, ids)

    def _static_fc(self, cohort: Cohort, *, fit: bool) -> np.ndarray:
        """Standardised static FC ``(N, R, R)`` float32 from the in-fold fitted transformer."""
        fc, transformer = static_features(
            cohort, self._new_transformer() if fit else self.transformer, fit=fit, vectorize=False
        )
        if fit:
            self.transformer = transformer
            self.n_rois_ = fc.shape[-1]
        if fc.shape[-1] != self.n_rois_:
            raise DataError(f"connectomes have {fc.shape[-1]} ROIs, the model was trained on {self.n_rois_}", reason="roi_mismatch")
        fc = np.nan_to_num(np.asarray(fc, dtype=np.float64))
        if fit:
            self._fit_scaler(fc)
        return self._scale(fc).astype(np.float32)

    def _fit_scaler(self, fc: np.ndarray) -> None:
        """Per-edge mean / sd over the training cohort passed to ``fit`` (never test data)."""
        if not bool(self._conn("standardize")):
            self.fc_mean_ = self.fc_scale_ = None
            return
        sd = fc.std(axis=0)
        self.fc_mean_ = fc.mean(axis=0).astype(np.float32)
        self.fc_scale_ = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)

    def _scale(self, fc: np.ndarray) -> np.ndarray:
        """``(FC - mean) / sd`` per edge with the training statistics; diagonal set to 0."""
        if self.fc_mean_ is None or self.fc_scale_ is None:
            return fc
        z = (fc - self.fc_mean_) / self.fc_scale_
        r = z.shape[-1]
        z[..., np.arange(r), np.arange(r)] = 0.0
        return z

    def _subject_windows(self, cohort: Cohort) -> tuple[np.ndarray, np.ndarray]:
        """Window and stride in TRs per subject: ``window_seconds`` / ``stride_seconds``
        are converted with each subject's own TR (sites with different TRs get windows of
        the same duration); otherwise ``window`` / ``stride`` TRs for everyone."""
        n = len(cohort)
        out = []
        for key in ("window", "stride"):
            secs = self.connectome.get(f"{key}_seconds")
            if secs is None:
                out.append(np.full(n, int(self._conn(key)), dtype=np.int64))
                continue
            vals = []
            for s in cohort:
                if not s.tr:
                    raise ConfigError(
                        f"connectome.{key}_seconds needs each subject's repetition time (tr); subject "
                        f"{s.id!r} has none. Set connectome.{key}_seconds=null and connectome.{key} in TRs"
                    )
                vals.append(seconds_to_timepoints(float(secs), float(s.tr)))
            out.append(np.asarray(vals, dtype=np.int64))
        return out[0], out[1]

    def _fit_dynamic(self, cohort: Cohort, ts: list[np.ndarray], win: np.ndarray, st: np.ndarray) -> None:
        """Crop length and the model's window count from the training cohort.

        ``connectome.n_timepoints``: ``null`` (default) whole scans of any length, ``"min"``
        the shortest training scan, or an int (TRs); ``train.crop_length`` (TRs) is the
        random training crop when ``n_timepoints`` is null. ``n_windows_`` is the largest
        number of windows a training crop has; longer scans are scored as crops of that
        many windows at prediction (``connectome.predict_crops``).
        """
        nt = self.connectome.get("n_timepoints")
        if nt == "min":
            crop: int | None = min(x.shape[0] for x in ts)
        elif nt is not None:
            try:
                crop = int(nt)
            except (TypeError, ValueError):
                raise ConfigError(f"connectome.n_timepoints must be null, 'min' or an int, got {nt!r}") from None
        else:
            crop = self.train_cfg.get("crop_length")
        lens = [x.shape[0] if crop is None else min(x.shape[0], crop) for x in ts]
        w = max(count_windows(int(L), int(a), int(b)) for L, a, b in zip(lens, win, st))
        if w == 0:
            raise DataError(
                f"crops of {crop} time points are shorter than the window length {int(win.max())}; "
                "lower connectome.window or raise the crop length",
                source=cohort.name,
                reason="too_short",
            )
        pc = str(self._conn("predict_crops"))
        if pc not in PREDICT_CROPS:
            raise ConfigError(f"connectome.predict_crops (predict.crops) must be one of {PREDICT_CROPS}, got {pc!r}")
        self.n_timepoints_, self.n_windows_ = crop, w
        self.window_ = int(win[0]) if len(set(win.tolist())) == 1 else None
        self.stride_ = int(st[0]) if len(set(st.tolist())) == 1 else None
        self.n_rois_ = cohort.n_rois

    def _labels_for(self, cohort: Cohort) -> np.ndarray:
        return np.zeros(len(cohort), dtype=np.int64)

    # -- CohortClassifier API --------------------------------------------------------------
    def fit(self, cohort: Cohort) -> TorchClassifier:
        y_raw = cohort.labels
        self.classes_ = np.unique(y_raw)
        if len(self.classes_) < 2:
            raise DataError("the training cohort has a single class", source=cohort.name, reason="one_class")
        y = np.searchsorted(self.classes_, y_raw).astype(np.int64)
        data = self._dataset(cohort, y, fit=True)
        fit_idx, val_idx = inner_split(
            np.arange(len(cohort)), y, val_fraction=float(self.train_cfg["val_fraction"]), seed=self.seed,
            groups=cohort.participants,
        )
        k = int(self.train_cfg["crops_per_subject"])
        train_set = data.subset(fit_idx, repeats=k) if isinstance(data, DynamicFCSet) else data.subset(fit_idx)
        val_set = data.subset(val_idx)
        self.val_ids_ = [cohort.ids[i] for i in val_idx]
        torch.manual_seed(self.seed)
        self.model = self._build_model()
        linear_init = getattr(self.model, "linear_init", "zeros")
        if linear_init in ("logreg", "logreg_frozen"):
            self._init_linear_path(self.model, data.subset(fit_idx), y[fit_idx])
        result = self._trainer().fit(self.model, train_set, val_set, n_classes=len(self.classes_))
        if linear_init == "logreg_frozen":
            # the frozen path took no part in the training; now that early stopping has
            # chosen the deep branch, refit it on the whole training fold (as the baseline)
            self._init_linear_path(self.model, data.subset(np.arange(len(cohort))), y)
        self._history = result.history
        self.best_epoch_ = result.best_epoch
        return self

    @staticmethod
    def _init_linear_path(model: torch.nn.Module, train_set: Any, y: np.ndarray) -> None:
        """``model.linear_init="logreg"`` / ``"logreg_frozen"``: set the linear path to an
        L2 logistic regression (C = 1, balanced classes, as the ``logreg`` baseline) fitted
        on ``train_set`` (before training: the fitting part of the training fold, never the
        validation part; ``logreg_frozen`` after training: the whole training fold; never
        test data)."""
        from sklearn.linear_model import LogisticRegression

        fc = train_set.static if isinstance(train_set, DynamicFCSet) else train_set.tensors["fc"]
        flat = model.triu_flat.to("cpu")  # type: ignore[union-attr]
        x = fc.reshape(fc.shape[0], -1).index_select(1, flat).double().cpu().numpy()
        lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(x, y)
        dev = model.linear.weight.device  # type: ignore[union-attr]
        coef = torch.as_tensor(lr.coef_, dtype=torch.float32, device=dev) / float(model.input_scale)  # type: ignore[arg-type]
        icpt = torch.as_tensor(lr.intercept_, dtype=torch.float32, device=dev)
        with torch.no_grad():
            model.linear.weight.zero_()  # type: ignore[union-attr]
            model.linear.bias.zero_()  # type: ignore[union-attr]
            if coef.shape[0] == 1:  # binary: class-1 logit minus class-0 logit, split evenly
                # (the split is where a ridge on both rows is smallest for this margin)
                model.linear.weight[1] = coef[0] / 2  # type: ignore[index,union-attr]
                model.linear.weight[0] = -coef[0] / 2  # type: ignore[index,union-attr]
                model.linear.bias[1] = icpt[0] / 2  # type: ignore[index,union-attr]
                model.linear.bias[0] = -icpt[0] / 2  # type: ignore[index,union-attr]
            else:
                model.linear.weight.copy_(coef)  # type: ignore[union-attr]
                model.linear.bias.copy_(icpt)  # type: ignore[union-attr]
        model.match_logreg_ridge(len(y), c=1.0)  # type: ignore[operator]  # linear_l2="auto"

    def _check_fitted(self) -> torch.nn.Module:
        if self.model is None:
            raise ConfigError("classifier is not fitted; call fit() (or load a saved one) first")
        return self.model

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        model = self._check_fitted()
        data = self._dataset(cohort, self._labels_for(cohort), fit=False)
        proba, _ = self._trainer(inference=True).predict(model, data)
        return proba

    def explain(self, cohort: Cohort) -> dict[str, np.ndarray]:
        """The model's attention record per subject, rows aligned with ``cohort``.

        Static-FC models: the model's attention tensors (e.g. ``"node"`` ``(N, R)``).
        Dynamic-FC models: for every window axis (``"spatial"`` ``(N, W, R)``,
        ``"temporal"`` ``(N, W)``, ``"temporal_matrix"`` ``(N, W, W)``), windows are indexed
        on each subject's own scan (window ``w`` starts at TR ``w * stride``); a window's
        value is the mean over the prediction crops (``connectome.predict_crops``) that
        contain it (``"temporal"`` then renormalised to sum to 1 over the subject's windows),
        and ``W`` is the largest window count in ``cohort``: windows past the end of a
        shorter scan are NaN.
        """
        model = self._check_fitted()
        data = self._dataset(cohort, self._labels_for(cohort), fit=False)
        trainer = self._trainer(inference=True)
        if not isinstance(data, DynamicFCSet):
            _, att = trainer.predict(model, data, attention=True)
            return att
        return self._explain_dynamic(model, data, trainer)

    def _explain_dynamic(self, model: torch.nn.Module, data: DynamicFCSet, trainer: Trainer) -> dict[str, np.ndarray]:
        axes = dict(getattr(getattr(model, "deep", model), "window_axes", {}))
        n, w_all = len(data), int(data.subject_windows.max())
        sums: dict[str, np.ndarray] = {}
        counts: dict[str, np.ndarray] = {}
        other: dict[str, list[np.ndarray]] = {}
        rng = np.random.default_rng(0)
        was_training = model.training
        model.eval()
        model.to(trainer.device)
        bs = int(self.train_cfg["batch_size"])
        with torch.inference_mode():
            for lo in range(0, n, bs):
                idx = np.arange(lo, min(n, lo + bs))
                inputs, meta = split_meta(data.batch(idx, train=False, rng=rng, device=trainer.device))
                out = model(inputs)
                crop_of = meta["crop_of"].cpu().numpy() + lo
                start = meta["window_start"].cpu().numpy()
                n_w = inputs["mask"].sum(1).cpu().numpy()
                for key, val in out.attention.items():
                    v = val.float().cpu().numpy()
                    ax = axes.get(key)
                    if ax is None:  # no window axis: mean over crops
                        other.setdefault(key, []).append((crop_of, v))  # type: ignore[arg-type]
                        continue
                    shape = tuple(w_all if (d - 1) in ax else v.shape[d] for d in range(1, v.ndim))
                    if key not in sums:
                        sums[key] = np.zeros((n, *shape))
                        counts[key] = np.zeros((n, *shape))
                    for c in range(v.shape[0]):
                        sl = [slice(None)] * (v.ndim - 1)
                        for a in ax:
                            sl[a] = slice(int(start[c]), int(start[c] + n_w[c]))
                        src = [slice(None)] * (v.ndim - 1)
                        for a in ax:
                            src[a] = slice(0, int(n_w[c]))
                        sums[key][(int(crop_of[c]), *sl)] += v[(c, *src)]
                        counts[key][(int(crop_of[c]), *sl)] += 1.0
        model.train(was_training)
        att = {}
        for key in sums:
            with np.errstate(invalid="ignore", divide="ignore"):
                att[key] = np.where(counts[key] > 0, sums[key] / np.maximum(counts[key], 1), np.nan).astype(np.float32)
        if "temporal" in att and axes.get("temporal") == (0,):
            # a distribution over the subject's windows again (overlapping crops each summed to 1)
            att["temporal"] = att["temporal"] / np.nansum(att["temporal"], axis=1, keepdims=True)
        for key, parts in other.items():
            rows = np.concatenate([p[0] for p in parts])
            vals = np.concatenate([p[1] for p in parts])
            tot = np.zeros((n, *vals.shape[1:]))
            np.add.at(tot, rows, vals)
            att[key] = (tot / np.bincount(rows, minlength=n).reshape(-1, *[1] * (vals.ndim - 1))).astype(np.float32)
        return att

    # -- interface for explanation / ensemble code -------------------------------------
    @property
    def input_key(self) -> str:
        """The batch tensor that gradient attributions are taken with respect to:
        ``"dfc"`` (sliding-window FC) for dynamic models, ``"fc"`` for static ones."""
        return "dfc" if self._spec.input == "dynamic_fc" else "fc"

    def input_batches(
        self, cohort: Cohort, batch_size: int = 32
    ) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        """Model inputs for ``cohort``, in order: ``(row indices into cohort, batch)``.

        ``clf.model(batch)`` returns a :class:`~graphbrain.models.base.ModelOutput`.
        Dynamic models get each whole scan as one crop (any length), zero-padded, with
        ``batch["mask"]`` ``(B, W)`` (True = real window) and the standardised static FC
        ``batch["fc"]``; static models get ``batch["fc"]`` ``(B, R, R)``. Tensors are on
        the classifier's device (CPU when no GPU), without gradients.
        """
        model = self._check_fitted()
        data = self._dataset(cohort, self._labels_for(cohort), fit=False)
        if isinstance(data, DynamicFCSet):
            data.predict_crops = "whole"
        device = next(model.parameters()).device
        rng = np.random.default_rng(0)
        for lo in range(0, len(cohort), int(batch_size)):
            idx = np.arange(lo, min(len(cohort), lo + int(batch_size)))
            inputs, _ = split_meta(data.batch(idx, train=False, rng=rng, device=device))
            yield idx, inputs

    def history(self) -> list[dict[str, Any]]:
        return list(self._history)

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        model = self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        save_torch(state, str(d / WEIGHTS_FILE))
        tparams = None
        if self.transformer is not None:
            tparams, tarrays = self.transformer.get_state()
            save_numpy({k: np.ascontiguousarray(v) for k, v in tarrays.items()}, str(d / TRANSFORMER_FILE))
        if self.fc_mean_ is not None and self.fc_scale_ is not None:
            save_numpy({"mean": np.ascontiguousarray(self.fc_mean_), "scale": np.ascontiguousarray(self.fc_scale_)},
                       str(d / SCALER_FILE))
        _write_json(
            d / CLASSIFIER_FILE,
            {
                "type": "torch",
                "model": self.model_name,
                "input": self._spec.input,
                "model_params": self.model_params,
                "connectome": self.connectome,
                "train": self.train,
                "seed": self.seed,
                "n_rois": self.n_rois_,
                "n_windows": self.n_windows_,
                "n_timepoints": self.n_timepoints_,
                "window": self.window_,
                "stride": self.stride_,
                "classes": np.asarray(self.classes_).tolist(),
                "rois": self.rois_,
                "transformer": tparams,
                "history": self._history,
            },
        )

    @classmethod
    @safe_loader  # checks every safetensors file first; damaged folders give a DataError
    def load(cls, directory: str | Path) -> TorchClassifier:
        d = Path(directory)
        meta = json.loads((d / CLASSIFIER_FILE).read_text())
        if meta.get("type") != "torch":
            raise ConfigError(f"{d / CLASSIFIER_FILE}: not a torch classifier (type={meta.get('type')!r})")
        clf = cls(
            meta["model"],
            model_params=meta["model_params"],
            connectome=meta["connectome"],
            train=meta["train"],
            seed=meta["seed"],
        )
        clf.n_rois_ = meta["n_rois"]
        clf.n_windows_ = meta["n_windows"]
        clf.n_timepoints_ = meta["n_timepoints"]
        clf.window_ = meta["window"]
        clf.stride_ = meta["stride"]
        clf.classes_ = np.asarray(meta["classes"])
        clf.rois_ = meta.get("rois")
        clf._history = meta.get("history", [])
        if (d / SCALER_FILE).exists():
            sc = load_numpy(str(d / SCALER_FILE))
            clf.fc_mean_, clf.fc_scale_ = sc["mean"], sc["scale"]
        if meta.get("transformer") is not None:
            clf.transformer = ConnectivityTransformer.from_state(meta["transformer"], load_numpy(str(d / TRANSFORMER_FILE)))
        model = clf._build_model()
        weights = check_state(model.state_dict(), load_torch(str(d / WEIGHTS_FILE)), str(d / WEIGHTS_FILE))
        model.load_state_dict(weights, strict=True)
        model.eval()
        clf.model = model
        return clf


def set_predict_crops(clf: Any, crops: str) -> int:
    """Make a fitted classifier score ``crops`` of each scan at prediction (``cover``,
    ``whole`` or ``first``; config ``predict.crops``), whatever it was trained with.

    Walks wrappers (site adaptation, search, ensembles) down to every dynamic-FC
    :class:`TorchClassifier` and returns how many it changed (0: the model reads static FC
    only, so there are no crops to choose). Training is unaffected: the crop set only
    decides which windows a prediction averages over.
    """
    if crops not in PREDICT_CROPS:
        raise ConfigError(f"predict.crops must be one of {PREDICT_CROPS}, got {crops!r}")
    if isinstance(clf, TorchClassifier):
        if clf._spec.input != "dynamic_fc":
            return 0
        clf.connectome = {**clf.connectome, "predict_crops": crops}
        return 1
    changed = 0
    for attr in ("base", "best_"):
        inner = getattr(clf, attr, None)
        if inner is not None:
            changed += set_predict_crops(inner, crops)
    for seeds in getattr(clf, "fitted_", None) or []:
        for member in seeds if isinstance(seeds, list | tuple) else [seeds]:
            changed += set_predict_crops(member, crops)
    return changed
