"""Explain a cross-validated run: tables (Parquet), figures (PNG + SVG), one HTML report.

:func:`explain_run` takes a run's result object (``PipelineResult`` or anything with
``config``, ``metrics``, ``per_fold``, ``pooled``, ``predictions``, ``excluded``,
``attention``, ``output_dir``) and the cohort it was made on, and writes to
``out_dir`` (default ``run_dir/explain/``):

* ``attributions_roi.parquet`` (per subject, per method, per ROI; rows aligned with
  ``predictions.parquet`` through ``subject_id`` / ``fold``),
  ``attributions_window.parquet`` (dynamic models);
* ``top_rois.parquet``, ``top_edges.parquet`` (top-k per method with atlas names, MNI
  coordinates, per-class means, class difference, permutation p and FDR q);
* ``class_difference_roi.parquet``, ``class_difference_edge.parquet`` (every unit: mean
  attribution per class, mean |attribution|, difference, Cohen's d, p, q);
* ``stability.parquet`` (Jaccard overlap of the folds' top-k sets per method),
  ``faithfulness.parquet`` and ``faithfulness_curves.parquet``,
  ``ground_truth.parquet`` (synthetic cohorts with planted signal);
* ``figures/*.png|svg`` and ``report.html`` (self-contained: figures embedded as base64).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from graphbrain.data import Cohort
from graphbrain.errors import ConfigError
from graphbrain.explain import figures as figs
from graphbrain.explain.aggregate import (
    class_difference,
    class_means,
    fold_stability,
    precision_at_k,
    top_units,
)
from graphbrain.explain.atlas import Atlas, load_atlas
from graphbrain.explain.attribution import (
    Explanation,
    available_methods,
    explain_result,
    fold_models,
)
from graphbrain.explain.faithfulness import faithfulness as run_faithfulness

log = logging.getLogger(__name__)


@dataclass
class ExplainReport:
    """Where everything went, and the tables themselves."""

    out_dir: Path
    report: Path
    explanations: dict[str, Explanation]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def _png_b64(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def ground_truth(explanations: dict[str, Explanation], cohort: Cohort) -> pd.DataFrame:
    """Per method: precision@|planted| of the planted ROIs; for windows, whether the peak
    of the mean |window attribution| lies in the planted window and the effect size
    (mean inside - mean outside) / sd."""
    planted = cohort.meta.get("planted_rois")
    if not planted:
        return pd.DataFrame()
    window = cohort.meta.get("planted_window")
    rows = []
    for m, e in explanations.items():
        row: dict[str, Any] = {"method": m, "k": len(planted), "precision_at_k": precision_at_k(e, list(planted))}
        if e.window is not None and e.window_times is not None and window is not None:
            prof = np.nanmean(np.abs(e.window) if e.signed else e.window, 0)
            centres = e.window_times[: prof.size].mean(1)
            inside = (centres >= window[0]) & (centres < window[1])
            row["peak_time"] = float(centres[int(np.nanargmax(prof))])
            row["peak_in_planted_window"] = bool(inside[int(np.nanargmax(prof))])
            sd = float(np.nanstd(prof)) or 1.0
            row["window_effect"] = float((np.nanmean(prof[inside]) - np.nanmean(prof[~inside])) / sd) if inside.any() and (~inside).any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def explain_run(
    result: Any,
    cohort: Cohort,
    *,
    out_dir: str | Path | None = None,
    methods: list[str] | None = None,
    atlas: Atlas | dict[str, Any] | None = None,
    k: int = 10,
    k_edges: int = 20,
    n_permutations: int = 1000,
    faithfulness: bool = True,
    units: tuple[str, ...] = ("roi", "edge", "window"),
    n_random: int = 20,
    n_steps: int = 10,
    models: dict[str, Any] | None = None,
    refit: bool = True,
    class_names: dict[int, str] | None = None,
    n_ig_steps: int = 32,
    progress: bool = True,
    seed: int = 0,
    extra_formats: tuple[str, ...] | None = None,
) -> ExplainReport:
    """Explain every fold of a run with each method; write tables, figures and ``report.html``."""
    from tqdm.auto import tqdm

    run_dir = Path(result.output_dir) if getattr(result, "output_dir", None) else None
    out = Path(out_dir) if out_dir is not None else (run_dir / "explain" if run_dir else None)
    if out is None:
        raise ConfigError("explain_run needs an out_dir (the run has no output_dir)")
    fig_dir = out / "figures"
    out.mkdir(parents=True, exist_ok=True)
    model_name = result.config["model"]["name"]
    methods = list(methods or available_methods(model_name))
    if not isinstance(atlas, Atlas):
        atlas = load_atlas(cohort.roi_names, n_rois=cohort.n_rois, **(atlas or {}))
    needs_models = any(m != "attention" for m in methods) or not getattr(result, "attention", None) or faithfulness
    if needs_models and models is None:
        models = fold_models(result, cohort, refit=refit, progress=progress)
    rep = ExplainReport(out_dir=out, report=out / "report.html", explanations={})
    rep.settings = {"n_random": n_random, "n_steps": n_steps, "n_permutations": n_permutations, "methods": methods}
    for m in tqdm(methods, desc="attributions", disable=not progress):
        try:
            rep.explanations[m] = explain_result(result, cohort, m, models=models, n_steps=n_ig_steps)
        except ConfigError as err:
            rep.errors[m] = str(err)
            log.warning("method %s skipped: %s", m, err)
    if not rep.explanations:
        raise ConfigError(f"no explanation method worked for model {model_name!r}: {rep.errors}")
    ex = rep.explanations
    tables = rep.tables
    # per-subject attributions
    tables["attributions_roi"] = pd.concat([e.frame("roi") for e in ex.values()], ignore_index=True)
    wins = [e.frame("window") for e in ex.values() if e.window is not None]
    if wins:
        tables["attributions_window"] = pd.concat(wins, ignore_index=True)
    # cohort statistics and top tables
    tops, topes, diffs_r, diffs_e, stab = [], [], [], [], []
    for m, e in ex.items():
        d_r = class_difference(e, "roi", n_permutations=n_permutations, seed=seed)
        diffs_r.append(class_means(e, "roi").merge(d_r, on="roi").assign(method=m))
        tops.append(top_units(e, atlas, unit="roi", k=k, stats=d_r))
        stab.append(fold_stability(e, "roi", k))
        if e.edge is not None:
            d_e = class_difference(e, "edge", n_permutations=n_permutations, seed=seed)
            diffs_e.append(class_means(e, "edge").merge(d_e, on="edge").assign(method=m))
            topes.append(top_units(e, atlas, unit="edge", k=k_edges, stats=d_e))
            stab.append(fold_stability(e, "edge", k_edges))
        if e.window is not None:
            stab.append(fold_stability(e, "window", max(1, min(5, e.window.shape[1] // 4))))
    tables["top_rois"] = pd.concat(tops, ignore_index=True)
    if topes:
        tables["top_edges"] = pd.concat(topes, ignore_index=True)
    tables["class_difference_roi"] = pd.concat(diffs_r, ignore_index=True)
    if diffs_e:
        tables["class_difference_edge"] = pd.concat(diffs_e, ignore_index=True)
    tables["stability"] = pd.DataFrame(stab)
    gt = ground_truth(ex, cohort)
    if len(gt):
        tables["ground_truth"] = gt
    # faithfulness
    if faithfulness and models:
        f = run_faithfulness(models, cohort, list(ex.values()), units=units, n_steps=n_steps, n_random=n_random, seed=seed)
        tables["faithfulness"] = f.table
        tables["faithfulness_curves"] = f.curves
    for name, t in tables.items():
        t.to_parquet(out / f"{name}.parquet", index=False)
    # figures
    saved_formats = figs.EXTRA_FORMATS
    if extra_formats is not None:
        figs.EXTRA_FORMATS = tuple(extra_formats)
    try:
        _figures(rep, result, cohort, atlas, class_names, k, k_edges, fig_dir)
    finally:
        figs.EXTRA_FORMATS = saved_formats
    rep.report.write_text(render_html(result, cohort, rep, atlas, methods, class_names, k, k_edges))
    return rep


def _figures(
    rep: ExplainReport, result: Any, cohort: Cohort, atlas: Atlas, class_names: dict[int, str] | None,
    k: int, k_edges: int, fig_dir: Path,
) -> None:
    tables, ex = rep.tables, rep.explanations
    pred = result.predictions
    labels = pred["label"].to_numpy()
    F = rep.figures
    F["roc"] = figs.roc_curve(labels, pred["proba"].to_numpy(), fig_dir, "roc", folds=pred["fold"].astype(str).to_numpy())
    F["confusion"] = figs.confusion(labels, pred["pred"].to_numpy(), fig_dir, "confusion")
    if "faithfulness_curves" in tables:
        F["deletion"] = figs.deletion_curves(tables["faithfulness_curves"], fig_dir, "deletion_curves")
    for m, e in ex.items():
        F[f"{m}:rois"] = figs.glass_brain_rois(e, atlas, fig_dir, f"{m}_glass_rois", k=k)
        F[f"{m}:edges"] = figs.glass_brain_edges(e, atlas, fig_dir, f"{m}_glass_edges", k=k_edges)
        F[f"{m}:heatmap"] = figs.class_heatmaps(e, atlas, fig_dir, f"{m}_class_heatmap", class_names)
        F[f"{m}:temporal"] = figs.temporal(e, fig_dir, f"{m}_temporal", tr=None, planted=cohort.meta.get("planted_window"))
    rep.figures = {k_: v for k_, v in F.items() if v is not None}


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>graphbrain explanation: {{ model }} / {{ data }} / {{ cv }}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0;display:block;overflow-x:auto;max-width:100%}th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #eee;margin:.4em 0}
.note{color:#555;font-size:.9em}.yes{background:#d9f2d9}.no{background:#f7dcdc}.partly{background:#fbf0c9}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}nav a{margin-right:1em}
</style></head><body>
<h1>graphbrain explanation report</h1>
<p><b>model</b> {{ model }} &middot; <b>data</b> {{ data }} &middot; <b>cv</b> {{ cv }} &middot;
<b>subjects</b> {{ n_subjects }} ({{ n_excluded }} excluded) &middot; <b>folds</b> {{ n_folds }} &middot;
generated {{ when }} by graphbrain {{ version }}</p>
<nav>{% for s in sections %}<a href="#{{ s[0] }}">{{ s[1] }}</a>{% endfor %}</nav>

<h2 id="metrics">Performance</h2>
<p class="note">Mean &plusmn; sd over folds; pooled: all out-of-fold predictions together.</p>
{{ metrics_table }}
{{ per_fold_table }}
{% for f in perf_figs %}<img src="{{ f[1] }}" alt="{{ f[0] }}" style="max-width:45%">{% endfor %}

{% if faith_table %}
<h2 id="faithfulness">Faithfulness: which explanation is faithful on this data?</h2>
<p class="note">Per subject, units are ranked by the method's attribution for the predicted class and
mean-replaced (deletion) or restored onto the mean input (insertion) without retraining. The areas are
compared with {{ n_random }} random rankings; <i>faithful</i> = both areas exceed the random mean by
2 random sd.</p>
{{ faith_table }}
{% if faith_fig %}<img src="{{ faith_fig }}" alt="deletion and insertion curves">{% endif %}
{% endif %}

{% if gt_table %}
<h2 id="truth">Ground truth (planted signal)</h2>
<p class="note">Planted ROIs: {{ planted }}; planted window: {{ planted_window }} (time points).</p>
{{ gt_table }}
{% endif %}

<h2 id="stability">Stability across folds</h2>
<p class="note">Mean pairwise Jaccard overlap of each fold model's top-k set (k as given);
<i>chance</i> is the expected overlap of two random k-sets.</p>
{{ stab_table }}

{% for m in method_sections %}
<h2 id="m-{{ m.name }}">Method: {{ m.name }}</h2>
<p class="note">{{ m.note }}</p>
<h3>Top {{ k }} ROIs</h3>{{ m.roi_table }}
{% if m.edge_table %}<h3>Top {{ k_edges }} edges</h3>{{ m.edge_table }}{% endif %}
{% for f in m.figs %}<img src="{{ f[1] }}" alt="{{ f[0] }}">{% endfor %}
{% endfor %}

{% if kg_table %}<h2 id="kg">Knowledge-graph reading</h2>
<p class="note">Each subject's top attributed ROIs mapped to anatomy concepts and read through
the knowledge graph's <code>diagnose()</code> (a reading aid: the KG knows where diseases are
located, not what a connectivity pattern means). First rows of <code>kg_reading.parquet</code>.</p>
{{ kg_table }}{% endif %}

{% if errors %}<h2>Methods not available</h2><ul>{% for k, v in errors.items() %}<li><b>{{ k }}</b>: {{ v }}</li>{% endfor %}</ul>{% endif %}

<h2 id="excluded">Excluded subjects</h2>
{% if excluded_table %}{{ excluded_table }}{% else %}<p>None.</p>{% endif %}

<h2 id="config">Configuration</h2>
<p class="note">Atlas: {{ atlas_source }}</p>
<pre>{{ config }}</pre>
</body></html>
"""

_NOTES = {
    "linear": "Exact contributions w_e z_e of each standardised edge to the linear score (positive: towards "
    "class 1); a ROI gets half the sum of its incident edges. Sums to the score minus the intercept.",
    "attention": "The model's own attention / importance record (unsigned); not guaranteed to be causal: "
    "see the faithfulness table.",
    "integrated_gradients": "Integrated gradients of the log-odds (class 1 vs 0) from the zero input "
    "(training-mean connectome for standardised static FC); edge (i,j) = A_ij + A_ji.",
    "saliency": "|gradient| of the log-odds with respect to each input edge (unsigned).",
    "input_x_gradient": "input x gradient of the log-odds (signed, towards class 1).",
}


def _table(df: pd.DataFrame | None, *, max_rows: int = 60, left: tuple[str, ...] = ()) -> str:
    if df is None or len(df) == 0:
        return ""
    df = df.head(max_rows)

    def fmt(v: Any) -> str:
        if isinstance(v, float | np.floating):
            if not np.isfinite(v):
                return ""
            return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"
        return html.escape(str(v))

    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in df.columns)
    body = []
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            cls = "l" if c in left else ""
            if c == "faithful":
                cls = str(r[c])
            cells.append(f'<td class="{cls}">{fmt(r[c])}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _metrics_frame(result: Any) -> pd.DataFrame:
    rows = []
    for m, v in result.metrics.items():
        rows.append({"metric": m, "mean": v.get("mean"), "sd": v.get("std"), "pooled": (result.pooled or {}).get(m)})
    return pd.DataFrame(rows)


def render_html(
    result: Any, cohort: Cohort, rep: ExplainReport, atlas: Atlas, methods: list[str],
    class_names: dict[int, str] | None, k: int, k_edges: int,
) -> str:
    from jinja2 import Environment

    from graphbrain._version import __version__

    env = Environment(autoescape=True)
    tpl = env.from_string(_TEMPLATE)
    T = rep.tables
    F = rep.figures
    cfg = result.config
    data = cfg.get("data", {})
    data_name = data.get("source", "") + (f" ({data.get('name')})" if data.get("name") else "")
    method_sections = []
    for m, e in rep.explanations.items():
        roi = T["top_rois"][T["top_rois"]["method"] == m].drop(columns=["method"])
        edge = T.get("top_edges")
        edge = edge[edge["method"] == m].drop(columns=["method"]) if edge is not None else None
        figs_m = [(name, _png_b64(F[key])) for key, name in (
            (f"{m}:rois", "glass brain: top ROIs"), (f"{m}:edges", "connectome: top edges"),
            (f"{m}:heatmap", "per-class heatmap"), (f"{m}:temporal", "temporal attribution"),
        ) if key in F]
        method_sections.append({
            "name": m,
            "note": _NOTES.get(m, "") + ("" if e.signed else " Unsigned."),
            "roi_table": _markup(_table(roi, left=("roi_id", "label", "group"))),
            "edge_table": _markup(_table(edge, left=("label_i", "label_j"))) if edge is not None and len(edge) else "",
            "figs": figs_m,
        })
    per_fold = pd.DataFrame(result.per_fold) if result.per_fold else None
    if per_fold is not None:
        keep = [c for c in ("fold", "n_train", "n_test", "accuracy", "auroc", "sensitivity", "specificity", "f1") if c in per_fold]
        per_fold = per_fold[keep]
    sections = [("metrics", "performance")]
    if "faithfulness" in T:
        sections.append(("faithfulness", "faithfulness"))
    if "ground_truth" in T:
        sections.append(("truth", "ground truth"))
    kg_reading = getattr(result, "kg_reading", None)  # graphbrain.fusion.reading, when the run asked for it
    sections += [("stability", "stability")] + [(f"m-{m}", m) for m in rep.explanations]
    if kg_reading is not None and len(kg_reading):
        sections.append(("kg", "KG reading"))
    sections += [("excluded", "excluded"), ("config", "config")]
    perf_figs = [(n, _png_b64(F[key])) for key, n in (("roc", "ROC curve"), ("confusion", "confusion matrix")) if key in F]
    return tpl.render(
        model=cfg.get("model", {}).get("name", "?"),
        data=data_name,
        cv=cfg.get("cv", {}).get("scheme", "?"),
        n_subjects=int(result.predictions["subject_id"].nunique()),
        n_excluded=len(result.excluded),
        n_folds=len(result.per_fold),
        when=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        sections=sections,
        metrics_table=_markup(_table(_metrics_frame(result), left=("metric",))),
        per_fold_table=_markup(_table(per_fold, left=("fold",))),
        perf_figs=perf_figs,
        faith_table=_markup(_table(T.get("faithfulness"), left=("method", "unit", "faithful"))),
        faith_fig=_png_b64(F["deletion"]) if "deletion" in F else None,
        n_random=rep.settings.get("n_random", 0),
        gt_table=_markup(_table(T.get("ground_truth"), left=("method",))),
        planted=cohort.meta.get("planted_rois"),
        planted_window=cohort.meta.get("planted_window"),
        stab_table=_markup(_table(T["stability"], left=("method", "unit"))),
        method_sections=method_sections,
        k=k,
        k_edges=k_edges,
        errors=rep.errors,
        kg_table=_markup(_table(kg_reading, max_rows=40, left=("subject_id", "disease", "rois", "findings",
                                                                "evidence", "message")))
        if kg_reading is not None and len(kg_reading) else "",
        excluded_table=_markup(_table(result.excluded, max_rows=500, left=tuple(result.excluded.columns))),
        atlas_source=atlas.source or "none (ROI ids only)",
        config=yaml.safe_dump(cfg, sort_keys=False),
    )


def _markup(s: str) -> Any:
    from markupsafe import Markup

    return Markup(s)  # noqa: S704 - every cell was escaped by _table
