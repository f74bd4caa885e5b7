"""Sweeps: ``graphbrain run -m A=x,y B=u,v ...`` runs every combination and gathers them.

The overrides use Hydra's override grammar (parsed by Hydra's own parser, so
``model=logreg,brainnetcnn``, ``connectome.window=range(20,41,10)``, quoting and
``+key=value`` behave as in any Hydra multirun); the cartesian product of the sweep
values is run one configuration at a time through :func:`~graphbrain.pipeline.run_pipeline`.
Each run writes its usual folder ``<sweep_dir>/<k>_<values>/``; a run that fails is
recorded with its error and the sweep goes on. The comparison table, one row per run
with the swept values, the mean and sd over folds of every metric, the pooled AUROC,
subjects, folds and seconds, is written as ``comparison.parquet`` and
``comparison.md`` (sorted by AUROC) in ``sweep_dir``. Rerunning the same sweep into the
same folder skips runs that already finished (their ``metrics.json`` exists and their
overrides match).

Keys: ``sweep_dir=D`` (default: ``output_dir`` when given, else
``outputs/sweep_<date-time>``); ``sweep.resume=false`` recomputes every run.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from graphbrain.errors import ConfigError, GraphbrainError
from graphbrain.training.metrics import METRICS


def expand(overrides: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """``(runs, swept_keys)``: the override list of every combination, in Hydra's order
    (the last swept key varies fastest), and the keys that vary."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as err:
        raise ConfigError(f"cannot parse sweep overrides {list(overrides)}: {err}") from err
    choices: list[list[str]] = []
    swept: list[str] = []
    for raw, o in zip(overrides, parsed, strict=True):
        if o.is_sweep_override():
            key = o.get_key_element()
            try:
                values = list(o.sweep_string_iterator())
            except HydraException as err:
                raise ConfigError(f"unsupported sweep {raw!r}: {err}") from err
            choices.append([f"{key}={v}" for v in values])
            swept.append(key.lstrip("+~"))
        else:
            choices.append([raw])
    return [list(c) for c in itertools.product(*choices)], swept


def _label(run: Sequence[str], swept: Sequence[str]) -> str:
    vals = [o.split("=", 1)[1] for o in run if o.split("=", 1)[0].lstrip("+~") in swept]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "_".join(vals))[:80] or "run"


def run_sweep(
    overrides: Sequence[str],
    sweep_dir: str | Path | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every combination of the sweep ``overrides``; returns (and writes) the comparison."""
    from graphbrain.batch import atomic
    from graphbrain.pipeline.run import run_pipeline

    runs, swept = expand([o for o in overrides if not o.startswith(("output_dir=", "sweep_dir="))])
    if not swept:
        raise ConfigError("a sweep needs at least one key with several values, e.g. model=logreg,svm")
    d = Path(sweep_dir) if sweep_dir else Path("outputs") / time.strftime("sweep_%Y%m%d-%H%M%S")
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, run in enumerate(runs):
        run_dir = d / f"{k:03d}_{_label(run, swept)}"
        row: dict[str, Any] = {"run": k, "run_dir": str(run_dir), "overrides": " ".join(run)}
        row.update({key: o.split("=", 1)[1] for o in run for key in swept if o.split("=", 1)[0].lstrip("+~") == key})
        marker = run_dir / "overrides.json"
        t0 = time.perf_counter()
        try:
            if resume and (run_dir / "metrics.json").is_file() and marker.is_file() and json.loads(marker.read_text()) == run:
                metrics = json.loads((run_dir / "metrics.json").read_text())
                row["status"] = "done_before"
            else:
                if progress:
                    print(f"[{k + 1}/{len(runs)}] {' '.join(run)}", flush=True)
                result = run_pipeline(overrides=[*run, f"output_dir={run_dir}"], progress=progress)
                metrics = result.metrics_json()
                atomic.write_json(marker, run)
                row["status"] = "ok"
            for m in METRICS:
                row[m] = metrics.get(m)
                row[f"{m}_sd"] = (metrics.get("std") or {}).get(m)
            row["pooled_auroc"] = (metrics.get("pooled") or {}).get("auroc")
            row["n_subjects"] = metrics.get("n_subjects")
            row["n_folds"] = (metrics.get("n_folds") or {}).get("auroc")
            row["model"] = metrics.get("model")
            row["error"] = None
        except (GraphbrainError, Exception) as err:  # noqa: BLE001 - one failed run must not stop the sweep
            row.update(status="failed", error=f"{type(err).__name__}: {err}")
            if progress:
                print(f"    failed: {type(err).__name__}: {err}", flush=True)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    table = pd.DataFrame(rows)
    for m in (*METRICS, *(f"{m}_sd" for m in METRICS), "pooled_auroc"):
        if m in table:
            table[m] = pd.to_numeric(table[m], errors="coerce")
    table.attrs["swept"] = list(swept)
    atomic.write_parquet(d / "comparison.parquet", table)
    atomic.write_text(d / "comparison.md", to_markdown(table, swept))
    return table


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def to_markdown(table: pd.DataFrame, swept: Sequence[str]) -> str:
    """The comparison as a Markdown table sorted by AUROC (mean +/- sd over folds)."""
    t = table.sort_values("auroc", ascending=False, na_position="last") if "auroc" in table else table
    head = [*swept, "AUROC", "accuracy", "balanced acc.", "sensitivity", "specificity", "F1", "pooled AUROC", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in t.to_dict(orient="records"):
        cells = [str(r.get(k, "")) for k in swept]
        for m in ("auroc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1"):
            mean, sd = r.get(m), r.get(f"{m}_sd")
            cells.append(_fmt(mean) + ("" if sd is None or sd != sd else f" +/- {sd:.3f}"))
        cells.append(_fmt(r.get("pooled_auroc")))
        cells.append(r["status"] if r["status"] != "failed" else f"failed: {str(r.get('error'))[:60]}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(args: Sequence[str]) -> int:
    """``graphbrain run -m OVERRIDES...`` (``--multirun`` works too)."""
    rest = [a for a in args if a not in ("-m", "--multirun")]
    if any(a in ("-h", "--help") for a in rest):
        print((__doc__ or "").strip())
        return 0
    sweep_dir = None
    keep = []
    resume = True
    progress = True
    for a in rest:
        key, _, val = a.partition("=")
        if key in ("sweep_dir", "output_dir"):
            sweep_dir = sweep_dir if key == "output_dir" and sweep_dir else val
        elif key == "sweep.resume":
            resume = val.lower() not in ("false", "0", "no")
        else:
            if key == "progress":
                progress = val.lower() not in ("false", "0", "no")
            keep.append(a)
    table = run_sweep(keep, sweep_dir, resume=resume, progress=progress)
    d = Path(table["run_dir"].iloc[0]).parent
    print(to_markdown(table, table.attrs["swept"]).rstrip())
    n_failed = int((table["status"] == "failed").sum())
    print(f"{len(table)} runs, {n_failed} failed; comparison written to {d / 'comparison.parquet'} and comparison.md")
    return 1 if n_failed else 0
