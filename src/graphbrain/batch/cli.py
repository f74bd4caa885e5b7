"""``graphbrain cohort ...``: batch processing of a whole cohort.

    graphbrain cohort process [OVERRIDES...]   files -> QC -> connectomes, resumable
    graphbrain cohort summary output_dir=D      print the counts of a run folder

Overrides: the packaged groups (``data=abide_pcp data.root=/d connectome.window=30``),
``output_dir=D`` (default ``outputs/cohort_<source>``), ``cache_dir=C`` (content-hash
store shared between runs; default ``D/cache``), ``progress=false``,
``executor=serial|process|dask``, ``executor.n_workers=N``,
``executor.address=tcp://host:8786`` (an existing Dask scheduler),
``qc.max_mean_fd=0.5``, ``qc.max_constant_rois=0``, ``qc.min_timepoints=100``,
``qc.min_scan_seconds=300``, ``qc.min_tsnr=...``, ``qc.max_fd_fraction=0.2``,
``batch.size=64``, ``batch.micro_batch=16``, ``batch.dynamic=false``, ``batch.overwrite=true``.

Exit status: 0 when every subject was processed or excluded by QC, 1 when some subject
failed (see errors.parquet) or none is usable, 2 for configuration errors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from graphbrain.errors import ConfigError

TOP_LEVEL = ("output_dir", "cache_dir", "progress")


def _excluded_report(result: Any, limit: int = 3) -> str:
    """Counts per reason with the first messages (for a run with no usable subject)."""
    status = result.status
    bad = status[status["status"] != "ok"]
    lines = []
    for reason, grp in bad.groupby(bad["reason"].fillna("unknown")):
        lines.append(f"  {reason}: {len(grp)}")
        for msg in grp["message"].dropna().head(limit):
            lines.append(f"      {msg}")
    return "\n".join(lines)


def process(args: Sequence[str]) -> int:
    from graphbrain.batch.config import compose, split_overrides
    from graphbrain.batch.runner import process_cohort

    own, hydra = split_overrides(args, TOP_LEVEL)
    cfg = compose(hydra)
    batch = dict(own["batch"])
    out = own.get("output_dir") or f"outputs/cohort_{cfg['data'].get('source')}"
    known = {"size", "max_in_flight", "micro_batch", "dynamic", "resume", "overwrite", "plots"}
    unknown = sorted(set(batch) - known)
    if unknown:
        raise ConfigError(f"unknown batch key(s) {unknown}; valid: {sorted(known)}")
    executor = own["executor"] or "serial"
    result = process_cohort(
        cfg["data"],
        output_dir=out,
        connectome=cfg.get("connectome"),
        qc=own["qc"],
        executor=executor,
        batch_size=int(batch.get("size", 64)),
        max_in_flight=batch.get("max_in_flight"),
        micro_batch=int(batch.get("micro_batch", 16)),
        dynamic=bool(batch.get("dynamic", True)),
        cache_dir=own.get("cache_dir"),
        resume=bool(batch.get("resume", True)),
        overwrite=bool(batch.get("overwrite", False)),
        progress=bool(own.get("progress", cfg.get("progress", True))),
        plots=bool(batch.get("plots", True)),
    )
    print(result.summary_line())
    print(f"results written to {result.output_dir}")
    if result.counts["ok"] == 0:
        print("no usable subject; subjects per reason (first messages):\n" + _excluded_report(result), file=sys.stderr)
        return 1
    return 1 if result.n_failed else 0


def summary(args: Sequence[str]) -> int:
    from graphbrain.batch.config import split_overrides
    from graphbrain.batch.runner import BatchResult

    own, rest = split_overrides(args, TOP_LEVEL)
    if rest or not own.get("output_dir"):
        raise ConfigError("usage: graphbrain cohort summary output_dir=<run folder>")
    result = BatchResult.load(own["output_dir"])
    print(result.summary_line())
    return 1 if result.n_failed else 0


def main(args: Sequence[str]) -> int:
    args = list(args)
    if not args or args[0] in ("-h", "--help", "help"):
        print((__doc__ or "").strip())
        return 0
    cmd, rest = args[0], args[1:]
    if any(a in ("-h", "--help") for a in rest):
        print((__doc__ or "").strip())
        return 0
    if cmd == "process":
        return process(rest)
    if cmd == "summary":
        return summary(rest)
    raise ConfigError(f"unknown cohort command {cmd!r}; use process or summary")
