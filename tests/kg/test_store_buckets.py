"""Bucketed (bounded-memory) store builds: many buckets give exactly the one-bucket store.

Every spilled phase of :func:`graphbrain.kg.store.build_store` (MRCONSO / MRDEF by CUI range,
labels / codes / tokens by key range, MRREL by head CUI range, in-edges by tail, diagnosis
records by finding) is forced into many buckets; a lost, duplicated or misordered row in any of
them changes an array or a table below. The concurrent build (relation side in a second thread)
must equal the sequential one.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from graphbrain.kg import KnowledgeGraph
from graphbrain.kg.readers.rrf import read_rrf
from graphbrain.kg.store import build_store
from graphbrain.kg.store.backend import DIAG_ARRAYS, diagnosis_arrays, semantic_disease_mask

pa = pytest.importorskip("pyarrow")

_GEN = Path(__file__).resolve().parents[2] / "benchmarks" / "gen_rrf.py"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_rrf", _GEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _contents(store: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for p in sorted(store.rglob("*")):
        rel = str(p.relative_to(store))
        if p.suffix == ".npy":
            out[rel] = np.load(p)
        elif p.suffix == ".arrow":
            with pa.memory_map(str(p), "r") as src:
                out[rel] = pa.ipc.open_file(src).read_all().combine_chunks().to_pydict()
        elif p.name == "meta.json":
            m = json.loads(p.read_text())
            out[rel] = {k: v for k, v in m.items() if k not in ("build_seconds", "phases", "buckets")}
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    meta = tmp_path_factory.mktemp("meta")
    _gen().generate(meta, 2500, 5000, seed=11)
    root = meta.parent
    one = build_store(meta, root / "one", buckets=1, bucket_rows=10**9)
    many = build_store(meta, root / "many", buckets=13, bucket_rows=10**9)
    with pytest.MonkeyPatch.context() as mp:  # small output batches: readers index across many
        mp.setattr("graphbrain.kg.store.build.BATCH_ROWS", 50)
        small = build_store(meta, root / "small", bucket_rows=60)  # sizes -> many buckets
    # the relation side in its own thread (default) or after the concept side: same bytes
    build_store(meta, root / "sequential", bucket_rows=60, concurrent=False)
    return meta, root, one, many, small


def test_many_buckets_were_used(builds):
    _, root, one, many, small = builds
    assert set(one["buckets"].values()) == {1, 10**9}
    assert many["buckets"]["concepts"] == many["buckets"]["relations"] == 13
    assert many["buckets"]["labels"] > 5 and many["buckets"]["tokens"] > 5  # sample quantiles, distinct
    assert min(small["buckets"][k] for k in ("concepts", "labels", "relations")) >= 8
    with pa.memory_map(str(root / "small" / "labels.arrow"), "r") as src:
        assert pa.ipc.open_file(src).num_record_batches > 5


@pytest.mark.parametrize("other", ["many", "small", "sequential"])
def test_bucketed_store_equals_one_bucket_store(builds, other):
    _, root, *_ = builds
    a, b = _contents(root / "one"), _contents(root / other)
    assert sorted(a) == sorted(b)
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype, k
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            assert a[k] == b[k], k


def test_store_bytes_do_not_depend_on_buckets_or_threads(builds):
    """Every file but meta.json (which records timings and bucket counts) has the same bytes
    whatever the bucket size or count and whether the relation side ran in its own thread."""
    _, root, *_ = builds
    files = sorted(p.relative_to(root / "one") for p in (root / "one").rglob("*") if p.is_file() and p.name != "meta.json")
    assert len(files) > 20
    for other in ("many", "sequential"):
        for f in files:
            assert (root / other / f).read_bytes() == (root / "one" / f).read_bytes(), (other, f)


def test_bucketed_store_answers_as_read_rrf(builds):
    meta, root, *_ = builds
    st, mem = KnowledgeGraph.open(root / "small"), read_rrf(meta).to_kg()
    assert st.concepts() == mem.concepts()
    assert st.relations() == mem.relations()
    cs = mem.concepts()
    for c in cs[::41]:
        for q in (c.id, c.name, c.name.upper(), *c.xrefs[:1], c.name.split()[0]):
            assert st.lookup(q, limit=5) == mem.lookup(q, limit=5), q
        assert st.neighbors(c.id, direction="both") == mem.neighbors(c.id, direction="both")
    for i in range(0, len(cs) - 2, 101):
        f = [cs[i].id, cs[i + 1].id]
        for scoring in ("legacy", "ic"):  # the store defaults to legacy, memory to ic: compare both
            assert st.diagnose(f, top_k=5, scoring=scoring).to_dict() == mem.diagnose(f, top_k=5, scoring=scoring).to_dict()


def test_bucketed_diagnosis_index_matches_in_memory_definition(builds):
    _, root, _, _, small = builds
    be = KnowledgeGraph.open(root / "small").backend
    spec = [tuple(p) for p in small["diagnosis"]]
    assert spec  # the generated release has has_manifestation and friends
    is_dis = semantic_disease_mask(be.meta["semantic_types"], np.asarray(be.sty_ptr), np.asarray(be.sty))
    ref = diagnosis_arrays(spec, np.asarray(be.head), np.asarray(be.rel), np.asarray(be.tail),
                           be.relation_type_names, is_dis, len(be.cui))
    assert len(ref["f_edges"]) > 50 and len(ref["par_edges"]) > 50
    for k in DIAG_ARRAYS:
        got = np.load(root / "small" / "diag" / f"{k}.npy")
        assert got.dtype == np.asarray(ref[k]).dtype, k
        np.testing.assert_array_equal(got, ref[k], err_msg=k)


@pytest.mark.parametrize("chunk", [1, 97, 4096])
def test_rrf_pieces_lose_no_row(tmp_path, chunk):
    """The reader parses the file in line-aligned pieces: tiny pieces (lines cut at every
    boundary, a last line without newline, a row without the trailing '|') give the same rows."""
    from graphbrain.kg.readers.rrf import DEFAULT_COLUMNS
    from graphbrain.kg.readers.rrf_fast import iter_rrf_batches

    meta = tmp_path / "meta"
    _gen().generate(meta, 300, 10, seed=5)
    p = meta / "MRCONSO.RRF"
    lines = p.read_text().splitlines(keepends=True)
    lines[7] = lines[7].rstrip("\n").rstrip("|") + "\n"  # no trailing '|'
    p.write_text("".join(lines).rstrip("\n"))  # no final newline
    cols = DEFAULT_COLUMNS["MRCONSO.RRF"]

    def rows(**kw):
        from collections import Counter

        st: Counter[str] = Counter()
        got = [r for b in iter_rrf_batches(p, cols, ["CUI", "STR"], stats=st, **kw) for r in zip(*b.to_pydict().values())]
        return sorted(got), st

    ref = sorted((ln.split("|")[0], ln.split("|")[14]) for ln in p.read_text().splitlines())
    got, st = rows(chunk_size=chunk)
    assert got == ref and len(ref) == 300
    assert st["MRCONSO.RRF:no_trailing_pipe"] == 1 and st["MRCONSO.RRF:rows"] == 300


_HOSTILE = [
    "Alzheimer's disease", "Alzheimer\u2019s", "Crohn's", "o's", "'s", "x's\ty", "  lead  trail ",
    "tab\there", "nl\nx", "v\x0bx", "fs\x1cx", "UPPER CASE", "\u00c4rzte \u00dcBER", "d\u00e9j\u00e0 vu",
    "a,b;c(d)[e]", "x--y", "caf\u00e9's menu", "emoji \U0001f600 face", "", " ", "\t",
    "diabetes mellitus, type 2", "flies", "bus", "analysis", "glass", "dogs's", "a\u00a0b",
    "under_score", "it\u2019s ok", "polyuria's polydipsia's", "cr\rlf\r\n", "ff\x0cx", "x  \t y",
]


@pytest.mark.parametrize("n_plain", [0, 2000])
def test_label_fast_paths_equal_the_full_kernels(n_plain):
    """Label normalising and word folding take fast paths (ASCII lower-casing, rewrites only on
    the rows holding a byte they could change, singular rules once per distinct word): on hostile
    strings, alone (every row rewritten) and among many plain rows (only those rows rewritten),
    they equal the full Arrow kernel sequence applied to every row, and the folded words equal
    graphbrain.kg.lookup.fold_words wherever lower-casing and casefold agree."""
    import pyarrow.compute as pc

    from graphbrain.kg.lookup import fold_words
    from graphbrain.kg.store.build import _fold_tokens, _normalise_labels

    plain = [f"plain label number {i} of {i % 7} kinds" for i in range(n_plain)]
    labels = pa.array(plain + _HOSTILE)

    low = pc.utf8_lower(labels)
    ref_norm = pc.utf8_trim(pc.replace_substring_regex(low, pattern=r"\s+", replacement=" "), characters=" ")
    assert _normalise_labels(labels).to_pylist() == ref_norm.to_pylist()

    t = pc.replace_substring(low, pattern="'s ", replacement=" ")
    t = pc.replace_substring(t, pattern="\u2019s ", replacement=" ")
    t = pc.replace_substring_regex(t, pattern="('|\u2019)s$", replacement="")
    t = pc.replace_substring_regex(t, pattern=r"[^\pL\pN\pM_\s]+", replacement=" ")
    sp = pc.utf8_split_whitespace(t)
    words, rows = _fold_tokens(labels)
    from graphbrain.kg.lookup import _singular

    # the splitter's empty words (leading / trailing white space) are dropped, as str.split does
    ref = [(r, _singular(w)) for r, w in zip(pc.list_parent_indices(sp).to_pylist(), pc.list_flatten(sp).to_pylist()) if w]
    assert list(zip(rows.tolist(), words.to_pylist())) == ref
    assert "" not in words.to_pylist()
    by_row: dict[int, list[str]] = {}
    for r, w in zip(rows.tolist(), words.to_pylist()):
        by_row.setdefault(r, []).append(w)
    checked = 0
    for i, s in enumerate(labels.to_pylist()):
        if s.lower() == s.casefold():
            assert by_row.get(i, []) == fold_words(s), s
            checked += 1
    assert checked >= len(labels) - 2


def test_token_ranks_from_dictionaries_with_repeated_words():
    """Folded words are spilled dictionary-encoded and two raw words can fold to one word
    ("fever", "fevers"): ranking the combined dictionaries must give equal words one rank,
    exactly as ranking the plain strings."""
    from graphbrain.kg.store.build import _str_rank

    words = ["fever", "pain", "fever", "rash", "b\u00e9", ""]
    a = pa.DictionaryArray.from_arrays(pa.array([0, 2, 1, 3, 2, 4, 5, 0], pa.int32()), pa.array(words))
    b = pa.DictionaryArray.from_arrays(pa.array([1, 0, 0], pa.int32()), pa.array(["rash", "ache"]))
    col = pa.chunked_array([a, b])
    plain = pa.chunked_array([a.cast(pa.string()), b.cast(pa.string())])
    r1, d1 = _str_rank(col)
    r2, d2 = _str_rank(plain)
    assert r1.tolist() == r2.tolist() and d1.to_pylist() == d2.to_pylist() == sorted(set(words) | {"ache"})


def test_token_table_is_the_folded_words_of_every_label(tmp_path):
    """tokens.arrow holds, sorted by (word, label row) and without repeats, exactly the
    fold_words of every label, including labels whose raw words fold to one word
    ("Fevers fever"), possessives, punctuation and non-ASCII text."""
    from graphbrain.kg.lookup import fold_words

    meta = tmp_path / "meta"
    _gen().generate(meta, 400, 200, seed=7)
    p = meta / "MRCONSO.RRF"
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    extra = ["Fevers fever", "Pains, pain (finding)", "Crohn's disease", "D\u00e9j\u00e0 vu episodes", "  lead  trail ",
             "Flies and fly"]
    for i, name in enumerate(extra):
        f = lines[i * 7].split("|")
        f[1], f[16], f[14] = "ENG", "N", name  # LAT, SUPPRESS, STR
        lines[i * 7] = "|".join(f)
    p.write_text("".join(lines), encoding="utf-8")
    build_store(meta, tmp_path / "st", bucket_rows=40)
    with pa.memory_map(str(tmp_path / "st" / "labels.arrow"), "r") as src:
        labels = pa.ipc.open_file(src).read_all().column("label").to_pylist()
    with pa.memory_map(str(tmp_path / "st" / "tokens.arrow"), "r") as src:
        tok = pa.ipc.open_file(src).read_all()
    got = list(zip(tok.column("token").to_pylist(), tok.column("row").to_pylist()))
    want = sorted({(w, r) for r, lab in enumerate(labels) for w in fold_words(lab) if lab.lower() == lab.casefold()})
    assert set(extra) <= set(labels)
    assert got == sorted(set(got))  # sorted, no repeats
    assert [g for g in got if labels[g[1]].lower() == labels[g[1]].casefold()] == want
