"""``graphbrain audit``: leakage audit (duplicates, split overlap, label-site confounding).

    graphbrain audit data=abide_pcp data.root=/d [output_dir=D] [split=FILE]
    graphbrain audit run_dir=R [split=FILE]        audit a `graphbrain cohort process` folder

With ``data=...`` the cohort is first processed (static FC only, resumable) into
``D/cohort``; executors and QC keys work as for ``graphbrain cohort process``
(``executor=process``, ``qc.max_mean_fd=...``). Keys: ``audit.fc_threshold=0.98``
(near-duplicate FC correlation), ``audit.site_auroc_warn=0.7``, ``audit.n_splits=5``,
``audit.strict=true`` (exit 1 when there is any warning). ``split`` accepts a table with
``subject_id`` + ``split`` (train/test) [+ ``fold``], a run's ``predictions.parquet`` or
run folder, or JSON. Results: ``D/audit.json``, ``audit.txt``, ``duplicates.parquet``,
``split_overlap.parquet``, ``site_labels.parquet``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from graphbrain.errors import ConfigError

TOP_LEVEL = ("output_dir", "cache_dir", "progress", "run_dir", "split")


def main(args: Sequence[str]) -> int:
    args = list(args)
    if any(a in ("-h", "--help", "help") for a in args):
        print((__doc__ or "").strip())
        return 0
    from graphbrain.batch.audit import audit_run
    from graphbrain.batch.config import compose, split_overrides

    own, hydra = split_overrides(args, TOP_LEVEL)
    opts = dict(own["audit"])
    known = {"fc_threshold", "site_auroc_warn", "n_splits", "strict", "seed"}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise ConfigError(f"unknown audit key(s) {unknown}; valid: {sorted(known)}")
    strict = bool(opts.pop("strict", False))
    run_dir = own.get("run_dir")
    if run_dir is None:
        if not any(a.startswith(("data=", "data.")) for a in hydra):
            raise ConfigError("graphbrain audit needs data=... (a cohort) or run_dir=... (a cohort process folder)")
        from graphbrain.batch.runner import process_cohort

        cfg = compose(hydra)
        out = Path(own.get("output_dir") or f"outputs/audit_{cfg['data'].get('source')}")
        res = process_cohort(cfg["data"], output_dir=out / "cohort", connectome=cfg.get("connectome"), qc=own["qc"],
                             executor=own["executor"] or "serial", dynamic=False, cache_dir=own.get("cache_dir"),
                             progress=bool(own.get("progress", cfg.get("progress", True))), plots=False)
        print(res.summary_line())
        run_dir = res.output_dir
    else:
        if hydra:
            raise ConfigError(f"with run_dir=..., data/connectome overrides are not used: {hydra}")
        out = Path(own.get("output_dir") or run_dir)
    report = audit_run(run_dir, split=own.get("split"), **opts)
    report.save(out)
    print(report.text())
    print(f"audit written to {out}")
    return 1 if strict and report.warnings else 0
