"""The ``graphbrain`` command line (thin: parses, calls the pipeline, prints).

    graphbrain run [OVERRIDES...]       cross-validated classification -> output_dir
    graphbrain train [OVERRIDES...]     fit on a whole cohort, save to output_dir
    graphbrain predict model_dir=M [OVERRIDES...]   apply a trained model to new data
    graphbrain config [OVERRIDES...]    print the composed configuration
    graphbrain models                   list the registered models
    graphbrain explain run_dir=D [method=M]   attributions, faithfulness, figures, HTML report
    graphbrain cohort process [OVERRIDES...]  batch: files -> QC -> connectomes (resumable)
    graphbrain audit [OVERRIDES...]     leakage audit: duplicates, split overlap, site confounding
    graphbrain run -m A=x,y B=u,v       sweep (Hydra multirun) gathered into one table
    graphbrain kg SUBCOMMAND ...        knowledge-graph tools (graphbrain kg --help)

OVERRIDES are Hydra overrides of the packaged config groups data, connectome, model,
cv and train, e.g. ``data=abide_pcp data.root=/path model=logreg cv=leave_site_out
output_dir=out``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = __doc__ or ""

# command -> module with ``main(args) -> int`` (imported only when the command is used)
ROOM_COMMANDS = {
    "explain": "graphbrain.pipeline.explain_cmd",
    "cohort": "graphbrain.batch.cli",
    "audit": "graphbrain.batch.cli_audit",
}


def _split_kv(args: Sequence[str], key: str) -> tuple[str | None, list[str]]:
    value = None
    rest = []
    for a in args:
        if a.startswith(f"{key}="):
            value = a.split("=", 1)[1]
        else:
            rest.append(a)
    return value, rest


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE.strip())
        return 0
    cmd, rest = args[0], args[1:]
    if cmd in ("--version", "version"):
        from graphbrain import __version__

        print(__version__)
        return 0
    if cmd == "kg":
        from graphbrain.kg.cli import main as kg_main

        return kg_main(rest)
    from graphbrain.errors import GraphbrainError

    # Commands whose parsing (and --help) lives in their own room: main(args) -> int.
    if cmd in ROOM_COMMANDS or (cmd == "run" and any(a in ("-m", "--multirun") for a in rest)):
        import importlib

        module = ROOM_COMMANDS.get(cmd, "graphbrain.pipeline.sweep")
        try:
            return int(importlib.import_module(module).main(rest))
        except GraphbrainError as err:
            print(f"graphbrain {cmd}: error: {err}", file=sys.stderr)
            return 2
    if any(a in ("-h", "--help") for a in rest):
        print(USAGE.strip())
        return 0
    try:
        return _dispatch(cmd, rest)
    except GraphbrainError as err:
        print(f"graphbrain {cmd}: error: {err}", file=sys.stderr)
        return 2


def _dispatch(cmd: str, rest: list[str]) -> int:
    from graphbrain.errors import ConfigError

    if cmd == "models":
        from graphbrain.models.registry import available_models, get_model_spec

        for name in available_models():
            spec = get_model_spec(name)
            print(f"{name:<12} {spec.kind:<8} {spec.input:<11} {spec.description}")
        return 0
    if cmd == "config":
        import yaml

        from graphbrain.pipeline import build_config

        print(yaml.safe_dump(build_config(overrides=rest), sort_keys=False).rstrip())
        return 0
    if cmd == "run":
        from graphbrain.pipeline import run_pipeline

        result = run_pipeline(overrides=rest)
        print(result.summary())
        if result.output_dir is not None:
            print(f"results written to {result.output_dir}")
        return 0
    if cmd == "train":
        from graphbrain.pipeline import train_model

        out = train_model(overrides=rest)
        print(f"trained model saved to {out}")
        return 0
    if cmd == "predict":
        from graphbrain.pipeline import predict

        model_dir, rest = _split_kv(rest, "model_dir")
        out, rest = _split_kv(rest, "output_dir")
        if not model_dir:
            raise ConfigError("predict needs model_dir=<folder written by `graphbrain train`>")
        result = predict(model_dir, overrides=rest, output_dir=out)
        n = len(result.predictions)
        if result.pooled:
            print(f"{n} subjects predicted; " + ", ".join(
                f"{k}={result.pooled[k]:.3f}" for k in ("accuracy", "auroc", "sensitivity", "specificity", "f1")
            ))
        else:
            print(f"{n} subjects predicted (no labels, no metrics)")
        if out:
            print(f"predictions written to {out}")
        return 0
    raise ConfigError(f"unknown command {cmd!r}; use run, train, predict, config, models or kg")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
