"""On-disk store: same graph and same answers as the in-memory graph from ``read_rrf``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from graphbrain.errors import DataError
from graphbrain.kg import KnowledgeGraph
from graphbrain.kg.readers.rrf import read_rrf
from graphbrain.kg.store import build_store

pytest.importorskip("pyarrow")

_GEN = Path(__file__).resolve().parents[2] / "benchmarks" / "gen_rrf.py"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_rrf", _GEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    meta = tmp_path_factory.mktemp("meta")
    _gen().generate(meta, 3000, 6000, seed=3)
    build_store(meta, meta.parent / "store")
    return meta, KnowledgeGraph.open(meta.parent / "store"), read_rrf(meta).to_kg()


def test_same_concepts_relations_and_stats(pair):
    meta, st, mem = pair
    assert len(st) == len(mem) > 100
    assert st.concepts() == mem.concepts()  # names, synonyms, types, xrefs, definitions
    assert st.relations() == mem.relations()
    assert st.relation_types() == mem.relation_types()
    ref = read_rrf(meta).stats
    got = st.backend.meta["stats"]
    for k in ("MRCONSO.RRF:kept", "MRCONSO.RRF:filtered_language", "MRCONSO.RRF:filtered_suppressed",
              "MRREL.RRF:kept", "MRREL.RRF:dangling", "MRREL.RRF:duplicate", "MRREL.RRF:self_loop",
              "MRREL.RRF:filtered_suppressed"):
        assert got.get(k, 0) == ref.get(k, 0), k


def test_same_lookups_neighbours_and_diagnoses(pair):
    _, st, mem = pair
    cs = mem.concepts()
    queries = []
    for c in cs[::37]:
        queries += [c.id, c.name, c.name.upper(), *c.synonyms[:1], *c.xrefs[:1]]
        if c.xrefs:
            queries.append(c.xrefs[0].partition(":")[2])
        queries.append(c.name.split()[0])  # a single word: whole-word fuzzy tier
    for q in queries:
        assert st.lookup(q, limit=5) == mem.lookup(q, limit=5), q
    for c in cs[::53]:
        assert st.neighbors(c.id, direction="both") == mem.neighbors(c.id, direction="both")
        assert st.ancestors(c.id) == mem.ancestors(c.id)
    for i in range(0, len(cs) - 3, 97):
        findings = [cs[i].id, cs[i + 1].name, cs[i + 2].id]
        for scoring in ("legacy", "ic"):  # the store defaults to legacy, memory to ic: compare both
            assert (st.diagnose(findings, top_k=5, scoring=scoring).to_dict()
                    == mem.diagnose(findings, top_k=5, scoring=scoring).to_dict())
    # non-default finding relations are indexed on first use and agree too
    rel = ["has_manifestation"]
    f = [cs[5].id, cs[7].id]
    assert (st.diagnose(f, finding_relations=rel, scoring="legacy").to_dict()
            == mem.diagnose(f, finding_relations=rel, scoring="legacy").to_dict())


def test_malformed_rows_named_or_skipped_and_counted(tmp_path):
    meta = tmp_path / "meta"
    _gen().generate(meta, 200, 300, seed=1)
    lines = (meta / "MRREL.RRF").read_text().splitlines(keepends=True)
    lines.insert(10, lines[10].rsplit("|", 3)[0] + "|\n")  # two fields short
    lines.insert(20, lines[20].rstrip("\n").rstrip("|") + "\n")  # no trailing '|': accepted
    (meta / "MRREL.RRF").write_text("".join(lines))
    with pytest.raises(DataError, match="MRREL.RRF") as exc:
        build_store(meta, tmp_path / "s1")
    assert ":11" in str(exc.value)  # the row
    m = build_store(meta, tmp_path / "s2", on_error="skip")
    ref = read_rrf(meta, on_error="skip")
    for k in ("MRREL.RRF:malformed", "MRREL.RRF:no_trailing_pipe"):
        assert m["stats"][k] == 1 == ref.stats[k], k
    assert KnowledgeGraph.open(tmp_path / "s2").relations() == ref.to_kg().relations()
    with (meta / "MRCONSO.RRF").open("ab") as fh:
        fh.write(b"C0000001|ENG|P|L1|PF|S1|Y|A1||||MSH|PT|D1|bad \xff byte|0|N|256|\n")
    with pytest.raises(DataError, match="UTF-8") as exc:
        build_store(meta, tmp_path / "s3")
    n_lines = len((meta / "MRCONSO.RRF").read_bytes().splitlines())
    assert f"MRCONSO.RRF:{n_lines}:" in str(exc.value)


def test_open_refuses_other_folders(tmp_path):
    with pytest.raises(DataError, match="not a graphbrain knowledge-graph store"):
        KnowledgeGraph.open(tmp_path)


def test_invalid_cui_named_like_read_rrf_or_skipped_and_counted(tmp_path):
    from graphbrain.kg.readers.rrf import ReadError

    meta = tmp_path / "meta"
    _gen().generate(meta, 400, 800, seed=2)
    for f, i in (("MRCONSO.RRF", 5), ("MRREL.RRF", 9)):
        lines = (meta / f).read_text().splitlines(keepends=True)
        lines[i] = "X" + lines[i][1:]  # 8 characters, not a CUI
        lines[i + 3] = "C12|" + lines[i + 3].split("|", 1)[1]  # too short: the slow path
        (meta / f).write_text("".join(lines))
    with pytest.raises(DataError, match="invalid CUI 'X") as exc:
        build_store(meta, tmp_path / "s0")
    with pytest.raises(ReadError) as ref_exc:
        read_rrf(meta)
    assert str(exc.value).split(": ")[0] == str(ref_exc.value).split(": ")[0]  # file:line:column
    m = build_store(meta, tmp_path / "s1", on_error="skip")
    ref = read_rrf(meta, on_error="skip")
    for k in ("MRCONSO.RRF:malformed", "MRREL.RRF:malformed", "MRCONSO.RRF:kept", "MRREL.RRF:kept"):
        assert m["stats"][k] == ref.stats[k], k
    assert m["stats"]["MRCONSO.RRF:malformed"] == m["stats"]["MRREL.RRF:malformed"] == 2
    st = KnowledgeGraph.open(tmp_path / "s1")
    assert st.relations() == ref.to_kg().relations()
