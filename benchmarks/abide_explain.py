"""ABIDE-PCP (323 subjects, 7 sites, Harvard-Oxford 111 ROIs): explanations of a leave-site-out run.

Runs ``graphbrain run data=abide_pcp model=M cv=leave_site_out explain=true`` through
:func:`graphbrain.run_pipeline` (fold models saved in ``OUT/models``; attributions,
faithfulness, figures and ``report.html`` in ``OUT/explain``), with the HO label image
and label table of ``../shared/data/atlases_pcp`` for names and MNI coordinates, and
prints (and writes ``OUT/summary.md``): metrics, top-10 ROIs per method with names,
fold stability and the faithfulness table.

    .venv/bin/python benchmarks/abide_explain.py --model logreg --out /tmp/abide_explain_logreg
    .venv/bin/python benchmarks/abide_explain.py --model brainnetcnn --out /tmp/abide_explain_bnc
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

import graphbrain

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN = {"epochs": 30, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-2, "warmup_epochs": 2, "patience": 10,
         "val_fraction": 0.2, "monitor": "val_auroc", "progress": False, "num_threads": 1}
MODELS = {
    "logreg": {"name": "logreg", "C": 1.0},
    "brainnetcnn": {"name": "brainnetcnn", "e2e_channels": [8, 8], "e2n_channels": 16, "n2g_channels": 32,
                    "fc_hidden": [32, 16]},
}


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency)."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"
        return str(v)

    rows = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    rows += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(rows)


def summary(model: str, out: Path, result: graphbrain.PipelineResult, seconds: float | None) -> str:
    ex = out / "explain"
    took = f", {seconds:.0f} s on this machine" if seconds else ""
    lines = [f"## {model}, leave-site-out ({len(result.per_fold)} folds){took}", "", "```", result.summary(), "```", ""]
    top = pd.read_parquet(ex / "top_rois.parquet")
    for m, g in top.groupby("method", sort=False):
        lines += [f"### top-10 ROIs: {m}", ""]
        cols = [c for c in ("rank", "label", "x", "y", "z", "importance", "diff", "cohen_d", "q") if c in g]
        lines += [markdown(g[cols]), ""]
    lines += ["### fold stability (Jaccard of top-k sets across the fold models)", ""]
    lines += [markdown(pd.read_parquet(ex / "stability.parquet")), ""]
    lines += ["### faithfulness (deletion AOC / insertion AUC vs 20 random rankings)", ""]
    f = pd.read_parquet(ex / "faithfulness.parquet")
    cols = ["method", "unit", "deletion_aoc", "deletion_aoc_random", "deletion_aoc_random_sd", "insertion_auc",
            "insertion_auc_random", "insertion_auc_random_sd", "faithful"]
    lines.append(markdown(f[cols]))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="logreg", choices=sorted(MODELS))
    ap.add_argument("--out", default="/tmp/abide_explain")
    ap.add_argument("--root", default=str(SHARED / "abide_pcp"))
    ap.add_argument("--atlas-dir", default=str(SHARED / "atlases_pcp"))
    ap.add_argument("--steps", type=int, default=10, help="faithfulness curve steps (CPU budget)")
    ap.add_argument("--ig-steps", type=int, default=32, help="integrated-gradients steps")
    ap.add_argument("--epochs", type=int, default=TRAIN["epochs"], help="torch models: maximum epochs")
    ap.add_argument("--summary-only", action="store_true", help="only summarise an existing --out folder")
    args = ap.parse_args()
    out = Path(args.out)
    if args.summary_only:
        text = summary(args.model, out, graphbrain.PipelineResult.load(out), None)
        (out / "summary.md").write_text(text + "\n")
        print(text)
        return
    torch.set_num_threads(1)
    atlas = Path(args.atlas_dir)
    t0 = time.perf_counter()
    result = graphbrain.run_pipeline(
        data={"source": "abide_pcp", "root": args.root},
        model=MODELS[args.model],
        cv="leave_site_out",
        train={**TRAIN, "epochs": args.epochs, "patience": min(TRAIN["patience"], args.epochs)},
        output_dir=args.out,
        overrides=[
            "explain=true",
            f"explain_atlas.image={atlas / 'ho_roi_atlas.nii.gz'}",
            f"explain_atlas.labels={atlas / 'ho_labels.csv'}",
            "cache_dir=/tmp/graphbrain_abide_cache",
            f"explain_options.steps={args.steps}",
            f"explain_options.ig_steps={args.ig_steps}",
        ],
    )
    seconds = time.perf_counter() - t0
    text = summary(args.model, out, result, seconds)
    (out / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
