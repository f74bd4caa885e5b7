"""``graphbrain explain run_dir=D [method=M] [KEY=VALUE ...]``: explain a finished run.

Reads the run folder (``config.yaml``, ``predictions.parquet``, ``metrics.json``,
``excluded.parquet``, ``attention.safetensors`` and, when the run was made with
``explain=true``, the fold models in ``models/``), reloads the cohort from the run's
data configuration (or ``data.*`` overrides), explains every fold's held-out subjects
and writes ``D/explain/``: Parquet tables, figures (PNG + SVG) and ``report.html``.
A run without saved fold models is refitted fold by fold from its configuration on the
recorded folds (``refit=false`` refuses instead).

Options:
    method=M[,M2]        linear | attention | integrated_gradients | saliency |
                         input_x_gradient (default: all that apply to the model)
    atlas_image=PATH     label image in MNI space (ROI centres for the brain figures)
    atlas_labels=PATH    label table (id, name[, group/network/lobe][, x, y, z])
    atlas_coords=PATH    coordinate table (x, y, z[, id]) of a coordinate atlas
    out=DIR              output folder (default D/explain)
    k=10  k_edges=20  permutations=1000  faithfulness=true  random=20  steps=10
    units=roi,edge,window  ig_steps=32  refit=true  formats=png,svg  progress=true
    data.KEY=VALUE       override the run's data configuration (e.g. data.root=...)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from graphbrain.errors import ConfigError

CLASS_NAMES = {"abide_pcp": {1: "autism", 0: "control"}}
_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _parse(args: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for a in args:
        if "=" not in a:
            raise ConfigError(f"graphbrain explain takes KEY=VALUE arguments, got {a!r} (see graphbrain explain --help)")
        k, v = a.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _bool(opts: dict[str, str], key: str, default: bool) -> bool:
    if key not in opts:
        return default
    v = opts.pop(key).lower()
    if v not in _BOOL:
        raise ConfigError(f"{key} must be true or false, got {v!r}")
    return _BOOL[v]


def atlas_options(cfg: dict[str, Any], opts: dict[str, str] | None = None) -> dict[str, Any]:
    """Atlas arguments from command-line options, else the run's ``explain_atlas`` config."""
    opts = opts or {}
    conf = dict(cfg.get("explain_atlas") or {})
    out = {}
    for key in ("image", "labels", "coords"):
        v = opts.pop(f"atlas_{key}", None) or conf.get(key)
        if v:
            out[key] = str(v)
    if "image" not in out and "coords" not in out:
        data = cfg.get("data") or {}
        if isinstance(data.get("atlas"), str) and data["atlas"].endswith((".nii", ".nii.gz")):
            out["image"] = data["atlas"]  # the label image the time series were extracted with
    return out


OPTION_KEYS = {
    "methods": "methods", "k": "k", "k_edges": "k_edges", "permutations": "n_permutations",
    "faithfulness": "faithfulness", "random": "n_random", "steps": "n_steps", "ig_steps": "n_ig_steps",
    "units": "units", "formats": "extra_formats",
}


def explain_settings(options: dict[str, Any] | None) -> dict[str, Any]:
    """``explain_run`` keyword arguments from the config's ``explain_options`` section."""
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if key not in OPTION_KEYS:
            raise ConfigError(f"unknown explain_options key {key!r}; valid keys: {sorted(OPTION_KEYS)}")
        if value is None:
            continue
        if key in ("methods", "units", "formats"):
            value = [v for v in (value.split(",") if isinstance(value, str) else value) if v]
            if key == "formats":
                value = tuple(v for v in value if v != "png")
            elif key == "units":
                value = tuple(value)
        out[OPTION_KEYS[key]] = value
    return out


def explain_saved_run(
    run_dir: str | Path,
    *,
    methods: list[str] | None = None,
    data_overrides: Sequence[str] = (),
    cohort: Any = None,
    **kwargs: Any,
) -> Any:
    """Load a run folder and its cohort, then :func:`graphbrain.explain.report.explain_run`."""
    from graphbrain.explain.report import explain_run
    from graphbrain.pipeline.result import PipelineResult
    from graphbrain.pipeline.run import load_data

    d = Path(run_dir)
    if not (d / "config.yaml").exists() or not (d / "predictions.parquet").exists():
        raise ConfigError(f"{d}: not a run folder (needs config.yaml and predictions.parquet from `graphbrain run`)")
    result = PipelineResult.load(d)
    cfg = result.config
    if cohort is None:
        data = dict(cfg.get("data") or {})
        if data.get("source") in (None, "in-memory cohort"):
            raise ConfigError(
                f"{d}/config.yaml: the run was made on an in-memory cohort; its data cannot be reloaded. "
                "Pass data.source=... (and the reader options) to `graphbrain explain`, or call "
                "graphbrain.explain.report.explain_run(result, cohort) from Python"
            )
        if data_overrides:
            from omegaconf import OmegaConf

            data = OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(data), OmegaConf.from_dotlist(list(data_overrides))))  # type: ignore[assignment]
        cohort = load_data(data)
    atlas = kwargs.pop("atlas", None) or atlas_options(cfg)
    names = CLASS_NAMES.get(str((cfg.get("data") or {}).get("source")))
    return explain_run(result, cohort, methods=methods, atlas=atlas, class_names=names, **kwargs)


def main(args: Sequence[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in args):
        print(__doc__.strip())
        return 0
    opts = _parse(args)
    run_dir = opts.pop("run_dir", None)
    if not run_dir:
        raise ConfigError("graphbrain explain needs run_dir=FOLDER (a folder written by `graphbrain run`)")
    methods = [m for m in opts.pop("method", "").split(",") if m] or None
    data_ovr = [f"{k[5:]}={v}" for k, v in opts.items() if k.startswith("data.")]
    for k in [k for k in opts if k.startswith("data.")]:
        opts.pop(k)
    cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) if (Path(run_dir) / "config.yaml").exists() else {}
    atlas = atlas_options(cfg, opts)
    formats = tuple(f for f in opts.pop("formats", "png,svg").split(",") if f and f != "png")
    kw: dict[str, Any] = {
        "extra_formats": formats,
        "out_dir": opts.pop("out", None),
        "k": int(opts.pop("k", 10)),
        "k_edges": int(opts.pop("k_edges", 20)),
        "n_permutations": int(opts.pop("permutations", 1000)),
        "n_random": int(opts.pop("random", 20)),
        "n_steps": int(opts.pop("steps", 10)),
        "n_ig_steps": int(opts.pop("ig_steps", 32)),
        "units": tuple(u for u in opts.pop("units", "roi,edge,window").split(",") if u),
        "faithfulness": _bool(opts, "faithfulness", True),
        "refit": _bool(opts, "refit", True),
        "progress": _bool(opts, "progress", True),
    }
    if opts:
        raise ConfigError(f"unknown graphbrain explain option(s) {sorted(opts)}; see graphbrain explain --help")
    rep = explain_saved_run(run_dir, methods=methods, data_overrides=data_ovr, atlas=atlas, **kw)
    print(f"report: {rep.report}")
    if "faithfulness" in rep.tables:
        t = rep.tables["faithfulness"][["method", "unit", "deletion_aoc", "deletion_aoc_random", "insertion_auc", "insertion_auc_random", "faithful"]]
        print(t.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for m, err in rep.errors.items():
        print(f"method {m} skipped: {err}", file=sys.stderr)
    return 0
