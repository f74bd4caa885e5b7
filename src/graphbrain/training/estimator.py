"""Cohort classifiers: the unit the evaluation spine fits inside each training fold.

A :class:`CohortClassifier` takes a :class:`~graphbrain.data.Cohort` in ``fit`` and
returns class probabilities ``(N, C)`` from ``predict_proba``. Everything it learns
from data (connectome reference, scaler, model weights) is learned in ``fit``, so the
pipeline fitting it on the training fold only is what guarantees no leakage.

Every classifier records the ROI set it was trained on (:func:`roi_fingerprint`: the ROI
count, names and a SHA-256 of the names) and refuses a cohort with other ROIs, even with
the same count (:func:`check_rois`): a model trained on one atlas never silently scores
another. Cohorts without ROI names are checked by count only (with a warning).

Persistence is pickle-free: ``save(dir)`` writes ``classifier.json`` (type, model
name, parameters) and ``arrays.safetensors`` / ``weights.safetensors``;
:func:`load_classifier` reads them back without executing code from the files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.preprocessing import StandardScaler

from graphbrain.connectome.static import ConnectivityTransformer, vectorize_fc
from graphbrain.data import Cohort
from graphbrain.errors import ConfigError, DataError, GraphbrainError
from graphbrain.models import get_model_spec

CLASSIFIER_FILE = "classifier.json"
_F = TypeVar("_F", bound=Callable[..., Any])


# -- safe loading -----------------------------------------------------------------------------


def check_safetensors(path: str | Path) -> None:
    """Refuse ``path`` unless it is a well-formed safetensors file (checked before parsing).

    A safetensors file is an 8-byte little-endian header length, a JSON header, then raw
    tensor bytes. Pickles (``\\x80`` protocol byte), ``torch.save`` zip archives and
    truncated files are named as such; nothing in the file is ever executed.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            header = fh.read(n) if 0 < n <= size - 8 else fh.read(1)
    except OSError as err:
        raise DataError(f"cannot read the file ({err})", source=str(p), reason="unreadable") from err
    meta = None
    if 2 <= n <= size - 8:
        try:
            meta = json.loads(header)
        except (UnicodeDecodeError, json.JSONDecodeError):
            meta = None
    what = None
    if not isinstance(meta, dict):
        # not a safetensors header: say what it looks like
        if len(head) < 8 or (n > size - 8 and header[:1] == b"{"):
            what = "truncated (the safetensors header is cut off)"
        elif head[:1] == b"\x80":
            what = "a Python pickle"
        elif head[:4] == b"PK\x03\x04":
            what = "a zip archive (torch.save format)"
        elif n > size - 8:
            what = "truncated or not a safetensors file"
        else:
            what = "not a safetensors file (bad header)"
    else:
        try:
            end = max((int(v["data_offsets"][1]) for k, v in meta.items() if k != "__metadata__"), default=0)
        except (TypeError, KeyError, ValueError, IndexError):
            end = -1
        if end < 0:
            what = "not a safetensors file (bad header)"
        elif 8 + n + end > size:
            what = f"truncated ({size} bytes, the header describes {8 + n + end})"
    if what is not None:
        raise DataError(
            f"refusing to load: the file is {what}; graphbrain reads model and result arrays only "
            "from safetensors files and never unpickles",
            source=str(p),
            reason="unsafe_or_corrupt_file",
        )


def read_json_file(path: str | Path) -> dict[str, Any]:
    """A JSON object from ``path``, with a :class:`DataError` naming the file on any problem."""
    p = Path(path)
    try:
        obj = json.loads(p.read_bytes().decode("utf-8"))
    except FileNotFoundError as err:
        raise DataError("file not found", source=str(p), reason="missing_file") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"not a valid JSON file ({err})", source=str(p), reason="unsafe_or_corrupt_file") from err
    if not isinstance(obj, dict):
        raise DataError(f"expected a JSON object, got {type(obj).__name__}", source=str(p), reason="wrong_format")
    return obj


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """numpy arrays from a safetensors file, checked first by :func:`check_safetensors`."""
    check_safetensors(path)
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        raise DataError(f"cannot read safetensors arrays ({err})", source=str(path), reason="unsafe_or_corrupt_file") from err


def check_state(expected: Mapping[str, Any], loaded: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """Refuse tensors whose names, shapes or dtypes differ from the model's own (torch or numpy)."""
    missing = sorted(set(expected) - set(loaded))
    extra = sorted(set(loaded) - set(expected))
    if missing or extra:
        raise DataError(
            f"weights do not match the model: missing {missing[:5]}, unexpected {extra[:5]}",
            source=source,
            reason="wrong_weights",
        )
    for k, v in loaded.items():
        e = expected[k]
        if tuple(v.shape) != tuple(e.shape) or str(v.dtype) != str(e.dtype):
            raise DataError(
                f"tensor {k!r} is {v.dtype} {tuple(v.shape)}, the model needs {e.dtype} {tuple(e.shape)}",
                source=source,
                reason="wrong_weights",
            )
    return loaded


def safe_loader(fn: _F) -> _F:
    """Decorate a ``load(directory)``: every safetensors file in the folder is checked first,
    and low-level parsing errors come out as a :class:`DataError` naming the folder."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        directory = next((a for a in (*args, *kwargs.values()) if isinstance(a, str | Path)), None)
        d = Path(directory) if directory is not None else None
        if d is not None and d.is_dir():
            for f in sorted(d.glob("*.safetensors")):
                check_safetensors(f)
        try:
            return fn(*args, **kwargs)
        except GraphbrainError:
            raise
        except Exception as err:  # json / yaml / parquet / safetensors / torch parsing errors
            raise DataError(
                f"cannot load from this folder: {type(err).__name__}: {err}",
                source=str(d),
                reason="unsafe_or_corrupt_file",
            ) from err

    return wrapper  # type: ignore[return-value]


def _cohort_roi_names(cohort: Cohort) -> list[str] | None:
    """The cohort's ROI names (cohort-level, else the subjects'); refuses mixed ROI sets."""
    if cohort.roi_names is not None:
        return [str(n) for n in cohort.roi_names]
    named = [s for s in cohort if s.roi_names is not None]
    if not named:
        return None
    first = [str(n) for n in named[0].roi_names]  # type: ignore[union-attr]
    for s in named[1:]:
        if [str(n) for n in s.roi_names] != first:  # type: ignore[union-attr]
            raise DataError(
                f"subjects {named[0].id!r} and {s.id!r} have different ROI names (different atlases?)",
                source=s.source or s.id,
                reason="roi_mismatch",
            )
    return first


def roi_fingerprint(cohort: Cohort) -> dict[str, Any]:
    """``{"n_rois", "roi_names", "sha256"}`` of the cohort's ROI set (names ``None`` if unknown)."""
    names = _cohort_roi_names(cohort)
    digest = None
    if names is not None:
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
        if len(names) != cohort.n_rois:
            raise DataError(
                f"{len(names)} ROI names for {cohort.n_rois} ROIs", source=cohort.name, reason="roi_mismatch"
            )
    else:
        warnings.warn(
            f"cohort {cohort.name!r} has no ROI names: the trained model can only check the ROI "
            "count of cohorts it predicts on, not that they use the same atlas",
            UserWarning,
            stacklevel=3,
        )
    return {"n_rois": int(cohort.n_rois), "roi_names": names, "sha256": digest}


def _short(names: list[str]) -> str:
    return repr(names) if len(names) <= 6 else f"[{', '.join(map(repr, names[:6]))}, ... ({len(names)} ROIs)]"


def check_rois(trained: dict[str, Any] | None, cohort: Cohort) -> None:
    """Refuse ``cohort`` when its ROIs differ from the ``trained`` fingerprint.

    Different counts are always refused; different names (or order) are refused when
    both sides have names; a side without names is checked by count (with a warning).
    """
    if trained is None:
        return
    n = int(cohort.n_rois)
    if n != int(trained["n_rois"]):
        raise DataError(
            f"the model was trained on {trained['n_rois']} ROIs, this cohort has {n}",
            source=cohort.name,
            reason="roi_mismatch",
        )
    mine = trained.get("roi_names")
    theirs = _cohort_roi_names(cohort)
    if mine is None or theirs is None:
        if mine is not None or theirs is not None:
            warnings.warn(
                f"cannot verify that cohort {cohort.name!r} uses the training atlas: "
                f"{'it' if theirs is None else 'the model'} has no ROI names (ROI count checked only)",
                UserWarning,
                stacklevel=3,
            )
        return
    if list(mine) != list(theirs):
        i = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
        raise DataError(
            f"the cohort's ROIs differ from those the model was trained on (a different atlas or "
            f"ROI order?): trained on {_short(list(mine))}, cohort has {_short(list(theirs))}; "
            f"first difference at ROI {i}: {mine[i]!r} vs {theirs[i]!r}",
            source=cohort.name,
            reason="roi_mismatch",
        )


class CohortClassifier(ABC):
    """Fit on a cohort, predict probabilities for another; save and load safely."""

    model_name: str

    @abstractmethod
    def fit(self, cohort: Cohort) -> CohortClassifier: ...

    @abstractmethod
    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        """Class probabilities, shape ``(N, C)``."""

    def explain(self, cohort: Cohort) -> dict[str, np.ndarray]:
        """Per-subject attributions (e.g. ``"spatial"`` ``(N, W, R)``); empty if none."""
        return {}

    @abstractmethod
    def save(self, directory: str | Path) -> None: ...

    def history(self) -> list[dict[str, Any]]:
        """Per-epoch training log, if the classifier is trained iteratively."""
        return []


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def static_features(
    cohort: Cohort, transformer: ConnectivityTransformer | None, *, fit: bool, vectorize: bool = True
) -> tuple[np.ndarray, ConnectivityTransformer | None]:
    """Static FC for every subject: ``(N, R(R-1)/2)`` vectors, or ``(N, R, R)`` matrices.

    Subjects with ROI time series go through ``transformer`` (fitted here when ``fit``,
    i.e. on the training cohort only; its ``vectorize`` flag must match); subjects that
    come with a precomputed FC matrix use it as is, and the transformer returned is then
    ``None``. A cohort mixing the two is refused (their connectomes are not comparable).
    """
    has_ts = [s.timeseries is not None for s in cohort]
    if all(has_ts):
        if transformer is None:
            raise ConfigError(
                "this classifier was trained on precomputed FC matrices; it cannot take time series"
            )
        if transformer.vectorize != vectorize:
            raise ConfigError("the connectivity transformer's vectorize flag does not match the request")
        ts = cohort.timeseries()
        if fit:
            transformer.fit(ts)
        return transformer.transform(ts), transformer
    if not any(has_ts):
        mats = np.stack([s.fc for s in cohort])
        return (vectorize_fc(mats) if vectorize else mats.astype(np.float32)), None
    raise DataError(
        "the cohort mixes subjects with time series and subjects with precomputed FC matrices",
        source=cohort.name,
        reason="mixed_inputs",
    )


class SklearnClassifier(CohortClassifier):
    """Static FC -> upper-triangle vector -> StandardScaler -> linear scikit-learn model."""

    def __init__(
        self,
        model_name: str = "logreg",
        model_params: dict[str, Any] | None = None,
        connectome: dict[str, Any] | None = None,
    ) -> None:
        spec = get_model_spec(model_name)
        if spec.kind != "sklearn":
            raise ConfigError(f"model {model_name!r} is not a scikit-learn model")
        self.model_name = model_name
        self.model_params = dict(model_params or {})
        self.connectome = dict(connectome or {})
        self._spec = spec
        self.transformer: ConnectivityTransformer | None = None
        self.scaler: StandardScaler | None = None
        self.model: Any = None
        self.rois_: dict[str, Any] | None = None

    def _new_transformer(self) -> ConnectivityTransformer:
        c = self.connectome
        return ConnectivityTransformer(
            kind=c.get("kind", "correlation"),
            estimator=c.get("estimator", "ledoit_wolf"),
            engine=c.get("engine") or "graphbrain",
            fisher_z=bool(c.get("fisher_z", False)),
            vectorize=True,
            cache_dir=c.get("cache_dir"),
        )

    def fit(self, cohort: Cohort) -> SklearnClassifier:
        y = cohort.labels
        if len(np.unique(y)) < 2:
            raise DataError("the training cohort has a single class", source=cohort.name, reason="one_class")
        self.rois_ = roi_fingerprint(cohort)
        X, self.transformer = static_features(cohort, self._new_transformer(), fit=True)
        self.scaler = StandardScaler().fit(X)
        self.model = self._spec.builder(**self.model_params)
        self.model.fit(self.scaler.transform(X), y)
        return self

    def _features(self, cohort: Cohort) -> np.ndarray:
        """Standardised FC features of a cohort to score (after the ROI-set check)."""
        if self.model is None or self.scaler is None:
            raise ConfigError("classifier is not fitted")
        check_rois(self.rois_, cohort)
        X, _ = static_features(cohort, self.transformer, fit=False)
        return self.scaler.transform(X)

    def decision_function(self, cohort: Cohort) -> np.ndarray:
        X = self._features(cohort)
        return self.model.decision_function(X)

    def predict_proba(self, cohort: Cohort) -> np.ndarray:
        if hasattr(self.model, "predict_proba"):
            return self.model.predict_proba(self._features(cohort))
        # Margin models (linear SVM): a logistic squashing of the margin; ranks are exact,
        # probabilities are not calibrated.
        score = self.decision_function(cohort)
        p1 = 1.0 / (1.0 + np.exp(-score))
        return np.stack([1.0 - p1, p1], axis=1)

    def edge_weights(self) -> np.ndarray:
        """The linear model's FC-edge coefficients (standardised units) folded to ``(R, R)``."""
        if self.model is None:
            raise ConfigError("classifier is not fitted")
        coef = np.asarray(self.model.coef_).ravel()
        r = int(round((1 + np.sqrt(1 + 8 * coef.size)) / 2))
        mat = np.zeros((r, r), dtype=np.float64)
        # nilearn's sym_matrix_to_vec lists the strict lower triangle in row-major order
        mat[np.tril_indices(r, -1)] = coef
        return mat + mat.T

    def explain(self, cohort: Cohort) -> dict[str, np.ndarray]:
        """Node importance ``(N, R)``: per subject, sum over edges of |weight x feature|.

        The contribution of edge (i, j) to subject n's score is ``w_ij * z_nij`` (``z`` the
        standardised FC); a node's importance is the sum of absolute contributions of the
        edges touching it.
        """
        w = self.edge_weights()
        z = self._features(cohort)
        r = w.shape[0]
        contrib = np.zeros((len(cohort), r, r))
        contrib[:, *np.tril_indices(r, -1)] = z * w[np.tril_indices(r, -1)]
        contrib = np.abs(contrib + contrib.transpose(0, 2, 1))
        return {"node": contrib.sum(axis=2).astype(np.float32)}

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "scaler.mean": self.scaler.mean_,
            "scaler.scale": self.scaler.scale_,
            "model.coef": np.asarray(self.model.coef_),
            "model.intercept": np.atleast_1d(np.asarray(self.model.intercept_)),
            "model.classes": np.asarray(self.model.classes_),
        }
        tparams = None
        if self.transformer is not None and hasattr(self.transformer, "n_rois_"):
            tparams, tarrays = self.transformer.get_state()
            arrays.update({f"transformer.{k}": v for k, v in tarrays.items()})
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(d / "arrays.safetensors"))
        _write_json(
            d / CLASSIFIER_FILE,
            {
                "type": "sklearn",
                "model": self.model_name,
                "model_params": self.model_params,
                "connectome": self.connectome,
                "transformer": tparams,
                "rois": self.rois_,
            },
        )

    @classmethod
    @safe_loader
    def load(cls, directory: str | Path) -> SklearnClassifier:
        d = Path(directory)
        meta = read_json_file(d / CLASSIFIER_FILE)
        arrays = read_arrays(d / "arrays.safetensors")
        _check_sklearn_arrays(arrays, d / "arrays.safetensors")
        clf = cls(meta["model"], meta["model_params"], meta["connectome"])
        clf.rois_ = meta.get("rois")
        if meta.get("transformer") is not None:
            t_arrays = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("transformer.")}
            clf.transformer = ConnectivityTransformer.from_state(meta["transformer"], t_arrays)
        scaler = StandardScaler()
        scaler.mean_ = arrays["scaler.mean"]
        scaler.scale_ = arrays["scaler.scale"]
        scaler.var_ = scaler.scale_**2
        scaler.n_features_in_ = scaler.mean_.shape[0]
        clf.scaler = scaler
        model = clf._spec.builder(**clf.model_params)
        model.coef_ = arrays["model.coef"]
        model.intercept_ = arrays["model.intercept"]
        model.classes_ = arrays["model.classes"]
        model.n_features_in_ = model.coef_.shape[1]
        clf.model = model
        return clf


def _check_sklearn_arrays(arrays: dict[str, np.ndarray], source: Path) -> None:
    """Names, dtypes and shapes of a saved linear model must agree with each other."""
    need = ("scaler.mean", "scaler.scale", "model.coef", "model.intercept", "model.classes")
    missing = [k for k in need if k not in arrays]
    if missing:
        raise DataError(f"arrays {missing} are missing", source=str(source), reason="wrong_weights")
    for k in need[:4]:
        if arrays[k].dtype.kind != "f":
            raise DataError(f"array {k!r} has dtype {arrays[k].dtype}, expected floating point",
                            source=str(source), reason="wrong_weights")
    f = arrays["scaler.mean"].shape
    coef = arrays["model.coef"]
    if (
        len(f) != 1
        or arrays["scaler.scale"].shape != f
        or coef.ndim != 2
        or coef.shape[1] != f[0]
        or arrays["model.intercept"].shape != (coef.shape[0],)
    ):
        raise DataError(
            f"array shapes disagree: scaler {f} / {arrays['scaler.scale'].shape}, coef {coef.shape}, "
            f"intercept {arrays['model.intercept'].shape}",
            source=str(source),
            reason="wrong_weights",
        )


def build_classifier(
    model: str,
    *,
    model_params: dict[str, Any] | None = None,
    connectome: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    seed: int = 0,
) -> CohortClassifier:
    """A fresh, unfitted classifier for the registered model ``model``."""
    spec = get_model_spec(model)
    if spec.kind == "sklearn":
        return SklearnClassifier(model, model_params, connectome)
    if spec.kind == "ensemble":
        from graphbrain.training.ensemble import EnsembleClassifier

        return EnsembleClassifier(**dict(model_params or {}), connectome=connectome, train=train, seed=seed)
    from graphbrain.training.torch_estimator import TorchClassifier

    return TorchClassifier(model, model_params=model_params, connectome=connectome, train=train, seed=seed)


def load_classifier(directory: str | Path) -> CohortClassifier:
    """Load a classifier saved with ``save`` (no pickle; torch weights via safetensors)."""
    d = Path(directory)
    path = d / CLASSIFIER_FILE
    if not path.exists():
        raise ConfigError(f"{path}: no saved classifier here (expected {CLASSIFIER_FILE})")
    kind = read_json_file(path).get("type")
    if kind == "sklearn":
        return SklearnClassifier.load(d)
    if kind == "torch":
        from graphbrain.training.torch_estimator import TorchClassifier

        return TorchClassifier.load(d)
    if kind == "ensemble":
        from graphbrain.training.ensemble import EnsembleClassifier

        return EnsembleClassifier.load(d)
    if kind == "adapted":
        from graphbrain.training.harmonize import AdaptedClassifier

        return AdaptedClassifier.load(d)
    if kind == "search":
        from graphbrain.training.search import SearchClassifier

        return SearchClassifier.load(d)
    raise ConfigError(f"{path}: unknown classifier type {kind!r}")
