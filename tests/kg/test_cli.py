"""The `graphbrain kg` command line, called as main([...])."""

from __future__ import annotations

import json

import pytest

from graphbrain.kg.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_lookup_table_and_json(capsys):
    rc, out, _ = run(capsys, "lookup", "Seizures", "--limit", "2")
    assert rc == 0 and "SYMP:0000124" in out and "semantic types" in out
    rc, out, _ = run(capsys, "lookup", "C0014544", "--json")
    data = json.loads(out)
    assert data[0]["id"] == "DOID:1826" and data[0]["kind"] == "code"


def test_neighbors_paths_diagnose(capsys):
    rc, out, _ = run(capsys, "neighbors", "epilepsy", "--relation", "is_a", "--direction", "out", "--json")
    data = json.loads(out)
    assert rc == 0 and [r["tail"] for r in data["relations"]] == ["DOID:936"]
    rc, out, _ = run(capsys, "paths", "DOID:1826", "DOID:4", "-k", "2", "--relation", "is_a", "--direction", "out")
    assert rc == 0 and out.startswith("1. (5 hops) epilepsy --is_a--> brain disease") and "2." not in out
    rc, out, _ = run(capsys, "diagnose", "seizure", "stiff neck", "--top-k", "3", "--json")
    data = json.loads(out)
    assert data["candidates"][0]["name"] == "Powassan encephalitis"
    assert data["candidates"][0]["evidence"]


def test_sparql_with_bindings(capsys):
    q = "PREFIX skos: <http://www.w3.org/2004/02/skos/core#> SELECT ?c ?l WHERE { ?c skos:prefLabel ?l }"
    rc, out, _ = run(capsys, "sparql", q, "--bind", "l=epilepsy", "--json")
    assert json.loads(out) == [{"c": "https://w3id.org/graphbrain/kg/concept/DOID%3A1826", "l": "epilepsy"}]
    rc, out, _ = run(capsys, "sparql", q, "--bind", 'l=x" } ; DROP ALL ; #', "--json")
    assert json.loads(out) == []


def test_build_from_tsv_and_errors(capsys, tmp_path, small_records):
    from graphbrain.kg import KnowledgeGraph

    src = KnowledgeGraph.from_records(*small_records).save(tmp_path / "src_tsv")
    rc, out, _ = run(capsys, "build", "--source", "file", "--input", str(src), "--out", str(tmp_path / "kg.json.gz"))
    assert rc == 0 and "8 concepts, 9 relations" in out
    rc, out, _ = run(capsys, "lookup", "cephalalgia", "--kg", str(tmp_path / "kg.json.gz"), "--backend", "oxigraph")
    assert rc == 0 and "S:3" in out
    rc, out, err = run(capsys, "neighbors", "zzzz qqqq xxxx", "--kg", str(tmp_path / "kg.json.gz"))
    assert rc == 1 and "unknown concept" in err
    with pytest.raises(SystemExit):
        main(["nosuchcommand"])


def test_build_from_rrf(capsys, tmp_path, rrf_dir):
    rc, out, _ = run(capsys, "build", "--source", "rrf", "--input", str(rrf_dir), "--out", str(tmp_path / "u.ttl"), "--json")
    assert rc == 0 and json.loads(out)["concepts"] == 2


def test_embed_command(capsys, tmp_path):
    pytest.importorskip("torch_geometric")
    from synthetic import planted_kg

    from graphbrain.kg import KnowledgeGraph

    kgp = KnowledgeGraph.from_records(*planted_kg()).save(tmp_path / "k.json.gz")
    rc, out, _ = run(
        capsys, "embed", "--kg", str(kgp), "--model", "distmult", "--dim", "4", "--epochs", "2",
        "--test-frac", "0.3", "--out", str(tmp_path / "e"), "--features", str(tmp_path / "f.csv"), "--json",
    )
    assert rc == 0 and "filtered_mrr" in json.loads(out)["metrics"]
    assert (tmp_path / "e.npz").is_file() and (tmp_path / "f.csv").is_file()


def test_diagnose_scoring_and_group_reach_the_library(capsys):
    """--scoring and --group give exactly what kg.diagnose gives with the same arguments."""
    from graphbrain.kg import KnowledgeGraph

    kg = KnowledgeGraph.default()
    for extra, kw in ((["--scoring", "legacy"], {"scoring": "legacy"}), (["--group"], {"group": True}), ([], {})):
        rc, out, _ = run(capsys, "diagnose", "seizure", "stiff neck", "--top-k", "5", "--json", *extra)
        want = kg.diagnose(["seizure", "stiff neck"], top_k=5, **kw)
        assert rc == 0
        got = json.loads(out)["candidates"]
        assert [c["id"] for c in got] == [c.concept_id for c in want.candidates]
        assert [len(c.get("subtypes", [])) for c in got] == [len(c.subtypes) for c in want.candidates]
    ic = kg.diagnose(["seizure", "stiff neck"], top_k=5)
    legacy = kg.diagnose(["seizure", "stiff neck"], top_k=5, scoring="legacy")
    assert [c.concept_id for c in ic.candidates] != [c.concept_id for c in legacy.candidates]  # flag matters
