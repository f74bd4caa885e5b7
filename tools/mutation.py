"""Mutation testing of the science-critical modules with mutmut 3.

Each module is mutated in its own scratch copy of the checkout (``src/``, ``tests/``,
``pyproject.toml`` and a generated ``setup.cfg``), never in the repository, and only
the tests that exercise it are run against each mutant. A mutant is *killed* when a
test fails; a *surviving* mutant is a change to the code that no test notices.

mutmut traces which test calls which function and runs, per mutant, only those tests,
fastest first, stopping at the first failure; the per-module lists below keep that to
fast unit / property tests (0.4-2 s per killed mutant instead of 50-90 s per survivor
with the pipeline tests).

Usage (CPU heavy: run it in the background, niced, with a time limit)::

    nice -n 15 timeout 3600 python tools/mutation.py splits static \\
        --json /tmp/mutation.json --workdir /tmp/mutation
    python tools/mutation.py estimator --sample 120    # a seeded random sample of mutants
    python tools/mutation.py splits --rerun-survivors  # after adding tests: retest survivors
    python tools/mutation.py dynamic --resume          # finish an interrupted run
    python tools/mutation.py diagnose --committed      # the last commit, not the working tree
    python tools/mutation.py metrics --baseline        # without the test_mutation_kills_* files
    python tools/mutation.py --list                    # the known module keys

The JSON file gets, per module: killed / survived / timeout / "no tests" counts, the
mutation score ``killed / mutants run``, seconds in all and per mutant, the source
commit (and whether the file was dirty), and the names of surviving mutants
(``mutmut show NAME`` in the work folder prints the diff).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module key -> (file to mutate, tests that must kill its mutants, slow tests left out).
# mutmut 3 maps every test to the functions it calls (a traced "stats" run) and, for each
# mutant, runs only the tests that call the mutated function, fastest first, stopping at
# the first failure (-x). These lists bound that universe: the fast unit / property tests
# of the module, not the end-to-end pipeline tests (tests/pipeline/ alone took 50-90 s per
# surviving mutant). Measured per-test times (pytest --durations, 2-core shared machine)
# are under 1 s except the deselected ones below.
MODULES: dict[str, tuple[str, list[str], list[str]]] = {
    "splits": (
        "src/graphbrain/training/splits.py",
        [
            "tests/training/test_splits_metrics.py",
            "tests/training/test_group_splits.py",
            "tests/test_properties.py",
            "tests/training/test_mutation_kills_splits.py",
        ],
        [],
    ),
    "static": (
        "src/graphbrain/connectome/static.py",
        [
            "tests/connectome/test_static.py",
            "tests/connectome/test_kernels.py",
            "tests/test_properties.py",
            "tests/connectome/test_mutation_kills_static.py",
        ],
        [],
    ),
    "estimator": (
        "src/graphbrain/training/estimator.py",
        [
            "tests/training/test_precomputed_fc.py",
            "tests/training/test_leakage_spy.py",
            "tests/test_safe_loading.py",
            "tests/training/test_fingerprint.py",
            "tests/training/test_splits_metrics.py",
            # load_classifier's dispatch to the other classifier types (1-2 s each)
            "tests/training/test_ensemble.py::test_save_load_round_trip_with_a_torch_member_no_pickle",
            "tests/training/test_harmonize.py::test_adapted_torch_static_model_and_save_load_round_trip",
            "tests/training/test_search.py::test_save_load_round_trip",
            "tests/training/test_mutation_kills_estimator.py",
        ],
        [],
    ),
    "torch_estimator": (
        "src/graphbrain/training/torch_estimator.py",
        [
            "tests/training/test_torch_estimator.py",
            "tests/training/test_leakage_spy.py",
            "tests/test_safe_loading.py",
            "tests/training/test_fingerprint.py",
            "tests/training/test_mutation_kills_torch_estimator.py",
        ],
        # 10 s: the STAGIN planted-signal test (the 2-5 s static-model ones stay)
        ["tests/training/test_torch_estimator.py::test_stagin_small_config_recovers_planted_signal_fast"],
    ),
    "dynamic": (
        "src/graphbrain/connectome/dynamic.py",
        [
            "tests/connectome/test_dynamic.py",
            "tests/test_properties.py",
            "tests/connectome/test_mutation_kills_dynamic.py",
        ],
        [],
    ),
    "diagnose": (
        "src/graphbrain/kg/diagnose.py",
        [
            "tests/kg/test_diagnose.py",
            "tests/kg/test_diagnose_relations.py",
            "tests/kg/test_mutation_kills_diagnose.py",
        ],
        [],
    ),
    "metrics": (
        "src/graphbrain/training/metrics.py",
        [
            "tests/training/test_splits_metrics.py",
            "tests/training/test_precomputed_fc.py",
            "tests/training/test_mutation_kills_metrics.py",
        ],
        [],
    ),
    "kernels": (
        "src/graphbrain/connectome/kernels.py",
        [
            "tests/connectome/test_kernels.py",
            "tests/connectome/test_static.py",
            "tests/connectome/test_mutation_kills_static.py",
            "tests/connectome/test_mutation_kills_kernels.py",
        ],
        [],
    ),
    "ragged": (
        "src/graphbrain/connectome/ragged.py",
        ["tests/models/test_ragged.py", "tests/training/test_torch_ragged.py",
         "tests/connectome/test_mutation_kills_ragged.py"],
        [],
    ),
    "graphs": (
        "src/graphbrain/connectome/graphs.py",
        ["tests/models/test_graphs.py", "tests/connectome/test_mutation_kills_graphs.py"],
        [],
    ),
}

STATUS = re.compile(r"^\s*(\S+): (.+)$")


def _prepare(work: Path, target: str, tests: list[str], deselect: list[str], timeout_multiplier: float,
             committed: bool = False) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if committed:  # src/ and tests/ as in the last commit (others may be editing the working tree)
        archive = subprocess.run(["git", "archive", "HEAD", "src", "tests"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    else:
        shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "pyproject.toml").read_text()
    # mutmut reads [tool.mutmut] from pyproject first; we configure it in setup.cfg only
    (work / "pyproject.toml").write_text(re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[)", "", text))
    _write_config(work, target, tests, deselect, timeout_multiplier)


def _write_config(work: Path, target: str, tests: list[str], deselect: list[str], timeout_multiplier: float) -> None:
    existing = [t for t in tests if (work / t.split("::")[0]).exists()]
    selection = existing + [arg for d in deselect for arg in ("--deselect", d)]
    (work / "setup.cfg").write_text(
        "[mutmut]\n"
        "source_paths = src/graphbrain\n"
        f"only_mutate = {target}\n"
        "pytest_add_cli_args_test_selection =\n"
        + "".join(f"    {t}\n" for t in selection)
        + "pytest_add_cli_args =\n    -x\n    -q\n    -p\n    no:cacheprovider\n"
        "    --hypothesis-profile=mutation\n    -W\n    ignore\n"
        "process_isolation = fork\n"
        "use_git_change_detection = false\n"
        # a mutant whose tests run longer than multiplier x (their clean time + 1 s) is a timeout
        f"timeout_multiplier = {timeout_multiplier}\n"
    )


def _forget_kill_tests(stats_file: Path) -> None:
    """Keep mutmut's test -> function map (re-tracing every test costs minutes) but forget
    the kill-test files (mutmut traces them again as new tests) and the config fingerprint
    (a changed test selection would otherwise reset every earlier verdict)."""
    if not stats_file.exists():
        return
    stats = json.loads(stats_file.read_text())
    stats.pop("config_fingerprint", None)

    def keep(test: str) -> bool:
        return "test_mutation_kills_" not in test

    stats["tests_by_mangled_function_name"] = {
        f: [t for t in ts if keep(t)] for f, ts in stats["tests_by_mangled_function_name"].items()
    }
    stats["duration_by_test"] = {t: d for t, d in stats["duration_by_test"].items() if keep(t)}
    stats_file.write_text(json.dumps(stats))


def _mutmut(work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, env=env, capture_output=True,
                          text=True)


def _results(work: Path, env: dict[str, str]) -> dict[str, str]:
    found = {}
    for line in _mutmut(work, env, "results", "--all", "true").stdout.splitlines():
        m = STATUS.match(line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def _durations(work: Path) -> dict[str, float]:
    """Seconds each mutant's test run took (mutmut's .meta files), by mutant name."""
    out: dict[str, float] = {}
    for meta in (work / "mutants").rglob("*.meta"):
        out.update(json.loads(meta.read_text()).get("durations_by_key", {}))
    return out


def _source_version(target: str) -> dict[str, str | bool]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "file_last_commit": git("log", "-1", "--format=%h", "--", target),
            "file_dirty": bool(git("status", "--porcelain", "--", target))}


def run_module(
    key: str, work_root: Path, *, sample: int | None, seed: int, max_children: int, report_only: bool = False,
    rerun_survivors: bool = False, timeout_multiplier: float = 10.0, baseline: bool = False, resume: bool = False,
    committed: bool = False,
) -> dict:
    target, tests, deselect = MODULES[key]
    tests = [t for t in tests if (ROOT / t.split("::")[0]).exists()]  # the kill-test files may not exist yet
    if baseline and not (report_only or rerun_survivors or resume):  # the suite as it was before the kill tests
        tests = [t for t in tests if not Path(t).name.startswith("test_mutation_kills_")]
    work = work_root / key
    version = _source_version(target)
    version["mutated"] = "last commit (git archive HEAD)" if committed else "working tree"
    if not (report_only or rerun_survivors or resume):
        _prepare(work, target, tests, deselect, timeout_multiplier, committed)
    env = dict(
        os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
        GRAPHBRAIN_HYPOTHESIS_EXAMPLES=os.environ.get("GRAPHBRAIN_HYPOTHESIS_EXAMPLES", "8"),
    )
    t0 = time.perf_counter()
    names: list[str] = []

    def summary(status: dict[str, str], seconds: float | None, proc: subprocess.CompletedProcess | None) -> dict:
        return _summary(target, tests, deselect, sample, status, seconds, proc, _durations(work), version)

    if report_only:  # summarise an earlier (possibly interrupted) run in the work folder
        return summary(_results(work, env), None, None)
    if rerun_survivors or resume:  # after adding tests: copy them in and retest only the survivors
        status = _results(work, env)
        # timeouts (e.g. an endless loop) already fail CI: only the survivors are retested
        # "no tests": the new tests may reach the function now
        names = sorted(k for k, v in status.items() if v in ("survived", "no tests"))
        if resume:  # an interrupted full run: the survivors and every mutant not run yet
            names = sorted(k for k, v in status.items() if v in ("survived", "no tests", "not checked"))
        shutil.rmtree(work / "tests")
        shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        _write_config(work, target, tests, deselect, timeout_multiplier)  # new test files join the selection
        _forget_kill_tests(work / "mutants" / "mutmut-stats.json")
        shutil.rmtree(work / "mutants" / "tests", ignore_errors=True)
        if not names:
            return summary(status, 0.0, None)
        proc = _mutmut(work, env, "run", "--max-children", str(max_children), *names)
        return summary(_results(work, env), time.perf_counter() - t0, proc)
    if sample is not None:
        # generate the mutants without testing any (no name matches), then draw a sample
        _mutmut(work, env, "run", "--max-children", "1", "no-such-mutant")
        every = sorted(_results(work, env))
        random.Random(seed).shuffle(every)
        names = sorted(every[:sample])
    proc = _mutmut(work, env, "run", "--max-children", str(max_children), *names)
    seconds = time.perf_counter() - t0
    status = _results(work, env)
    if names:
        status = {k: v for k, v in status.items() if k in set(names)}
    return summary(status, seconds, proc)


def _summary(target: str, tests: list[str], deselect: list[str], sample: int | None, status: dict[str, str],
             seconds: float | None, proc: subprocess.CompletedProcess | None, durations: dict[str, float],
             version: dict) -> dict:
    counts: dict[str, int] = {}
    for v in status.values():
        counts[v] = counts.get(v, 0) + 1
    killed = counts.get("killed", 0)
    checked = sum(n for s, n in counts.items() if s not in ("not checked", "skipped"))
    per: dict[str, list[float]] = {}
    for name, st in status.items():
        if name in durations and st not in ("not checked", "skipped"):
            per.setdefault(st, []).append(durations[name])
    every = [d for ds in per.values() for d in ds]
    return {
        "module": target,
        "source": version,
        "tests": tests,
        "deselected": deselect,
        "sampled": sample,
        "mutants_total": len(status) if sample is None else None,
        "counts": counts,
        "mutants_run": checked,
        "score": killed / checked if checked else None,
        "seconds": None if seconds is None else round(seconds, 1),
        "seconds_per_mutant": {
            "mean": round(sum(every) / len(every), 2) if every else None,
            "median": round(sorted(every)[len(every) // 2], 2) if every else None,
            **{f"mean_{st}": round(sum(ds) / len(ds), 2) for st, ds in per.items()},
        },
        "survived": sorted(k for k, v in status.items() if v == "survived"),
        "timeout": sorted(k for k, v in status.items() if v == "timeout"),
        "no_tests": sorted(k for k, v in status.items() if v == "no tests"),
        "returncode": None if proc is None else proc.returncode,
        "log_tail": "" if proc is None else (proc.stdout + proc.stderr)[-2000:],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help=f"module keys: {', '.join(MODULES)}")
    ap.add_argument("--sample", type=int, default=None, help="run a seeded random sample of N mutants")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-children", type=int, default=1, help="parallel mutant workers (default 1)")
    ap.add_argument("--timeout-multiplier", type=float, default=10.0,
                    help="timeout = multiplier x (clean time of the mutant's tests + 1 s); default 10")
    ap.add_argument("--committed", action="store_true",
                    help="mutate and test src/ and tests/ as in the last commit (git archive HEAD), not the "
                         "working tree")
    ap.add_argument("--resume", action="store_true",
                    help="continue an interrupted full run in the work folder with the current tests "
                         "(survivors and mutants not run yet)")
    ap.add_argument("--baseline", action="store_true",
                    help="leave out the tests/**/test_mutation_kills_*.py files (score of the suite without "
                         "them); a later --rerun-survivors adds them back")
    ap.add_argument("--workdir", default="/tmp/graphbrain-mutation", help="scratch folder (not the repo)")
    ap.add_argument("--json", default=None, help="append results to this JSON file")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="summarise the work folder, run nothing")
    ap.add_argument("--rerun-survivors", action="store_true",
                    help="copy the current tests into the work folder and retest surviving mutants only")
    args = ap.parse_args(argv)
    if args.list or not args.modules:
        for k, (f, t, d) in MODULES.items():
            print(f"{k:16} {f}  <- {', '.join(t)}" + (f" (minus {', '.join(d)})" if d else ""))
        return 0
    work_root = Path(args.workdir).resolve()
    if ROOT in work_root.parents or work_root == ROOT:
        ap.error("--workdir must be outside the repository")
    results = {}
    if args.json and Path(args.json).exists():
        results = json.loads(Path(args.json).read_text())
    for key in args.modules:
        if key not in MODULES:
            ap.error(f"unknown module {key!r}; known: {', '.join(MODULES)}")
        r = run_module(key, work_root, sample=args.sample, seed=args.seed, max_children=args.max_children,
                       report_only=args.report_only, rerun_survivors=args.rerun_survivors,
                       timeout_multiplier=args.timeout_multiplier, baseline=args.baseline,
                       resume=args.resume, committed=args.committed)
        results[key] = r
        score = "n/a" if r["score"] is None else f"{100 * r['score']:.1f} %"
        print(f"{key}: {score} killed of {r['mutants_run']} mutants in {r['seconds']} s "
              f"({r['seconds_per_mutant']}); {r['counts']}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
