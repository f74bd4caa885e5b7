"""Read side of the on-disk store: a memory-mapped :class:`~graphbrain.kg.backends.base.Backend`.

Opening maps the ``.npy`` arrays and Arrow IPC tables written by
:func:`graphbrain.kg.store.build.build_store` (nothing is parsed or copied), so a new process
answers its first look-up or diagnosis in well under a second whatever the release size:

* look-up by id, code, exact and case-insensitive label: binary search in the sorted
  ``codes`` / ``bare`` / ``labels`` tables;
* fuzzy look-up: candidates from the whole-word token postings (``tokens``) and the labels
  starting with the query, ranked by the same :class:`~graphbrain.kg.lookup.FuzzyIndex` rules
  as the in-memory backends (tiers 3 and 2 give the same answers; tier 1, character
  similarity, only sees prefix candidates here);
* neighbours and ancestors: CSR slices; diagnosis: a :class:`~graphbrain.kg.diagnose.DiagnosisIndex`
  whose arrays are memory-mapped from ``diag/`` (built at store time for the built-in finding
  relations; other relations are indexed on first use, in memory).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from graphbrain.errors import DataError
from graphbrain.kg.backends.base import Backend, UnknownConceptError
from graphbrain.kg.lookup import FuzzyIndex, Match, looks_like_code, normalise_text
from graphbrain.kg.model import DISEASE_TUIS, IS_A, Concept, Relation, SemanticType

_CUI = re.compile(r"^C(\d{7})$")
DIAG_ARRAYS = (
    "is_disease", "f_edges", "f_dis", "f_ptr", "par_edges", "par", "par_ptr",
    "chi_edges", "chi", "chi_ptr", "n_children", "idf",
)


def semantic_disease_mask(sty_list: Sequence[Sequence[str]], sty_ptr: np.ndarray, sty_codes: np.ndarray) -> np.ndarray:
    """Concepts with at least one disease semantic type (:data:`DISEASE_TUIS`)."""
    n = len(sty_ptr) - 1
    ok = np.array([s[0] in DISEASE_TUIS for s in sty_list] + [False], dtype=bool)
    if not len(sty_codes):
        return np.zeros(n, dtype=bool)
    owner = np.repeat(np.arange(n), np.diff(sty_ptr))
    out = np.zeros(n, dtype=bool)
    out[owner[ok[sty_codes]]] = True
    return out


def finding_relation_codes(
    spec: Sequence[tuple[str, str]], rtypes: Sequence[str]
) -> tuple[dict[str, list[int]], list[tuple[int, str]]]:
    """Codes (indices into ``rtypes``) of the finding relations of ``spec`` by the end that
    holds the disease (``"either"`` counts for both), and ``(code, end)`` of the relations
    with a fixed disease end (those mark diseases when no semantic type does)."""
    code = {r: i for i, r in enumerate(rtypes)}
    ends: dict[str, list[int]] = {"head": [], "tail": []}
    fixed: list[tuple[int, str]] = []
    for name, end in spec:
        c = code.get(name, -1)
        if c >= 0:
            for e in (("head", "tail") if end == "either" else (end,)):
                ends[e].append(c)
            if end != "either":
                fixed.append((c, end))
    return ends, fixed


def diagnosis_arrays(
    spec: Sequence[tuple[str, str]], head: np.ndarray, rel: np.ndarray, tail: np.ndarray,
    rtypes: Sequence[str], is_disease: np.ndarray, n: int,
) -> dict[str, Any]:
    """The arrays of :class:`graphbrain.kg.diagnose.DiagnosisIndex` from edge columns
    (the same definitions, vectorised; tests check store and in-memory answers agree)."""
    is_disease = np.array(is_disease, dtype=bool)
    ends, fixed = finding_relation_codes(spec, rtypes)
    sel = {e: np.flatnonzero(np.isin(rel, np.array(c, dtype=np.int32))).astype(np.int32) for e, c in ends.items()}
    if not is_disease.any():
        for c, end in fixed:
            e = np.flatnonzero(rel == c)
            is_disease[(head if end == "head" else tail)[e]] = True
    fe = np.concatenate([sel["head"], sel["tail"]])
    dis = np.concatenate([head[sel["head"]], tail[sel["tail"]]]).astype(np.int64)
    fnd = np.concatenate([tail[sel["head"]], head[sel["tail"]]]).astype(np.int64)
    keep = is_disease[dis] if dis.size else np.zeros(0, dtype=bool)
    fe, dis, fnd = fe[keep], dis[keep], fnd[keep]
    order = np.lexsort((dis, fnd))
    out: dict[str, Any] = {"is_disease": is_disease, "f_edges": fe[order], "f_dis": dis[order]}
    out["f_ptr"] = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(fnd, minlength=n), out=out["f_ptr"][1:])
    isa = list(rtypes).index(IS_A) if IS_A in rtypes else -1
    ie = np.flatnonzero(rel == isa).astype(np.int32) if isa >= 0 else np.zeros(0, np.int32)
    out["isa_code"] = isa
    o = np.lexsort((tail[ie], head[ie]))
    out["par_edges"] = ie[o]
    out["par"] = tail[out["par_edges"]].astype(np.int64)
    out["par_ptr"] = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(head[ie], minlength=n), out=out["par_ptr"][1:])
    o = np.lexsort((head[ie], tail[ie]))
    out["chi_edges"] = ie[o]
    out["chi"] = head[out["chi_edges"]].astype(np.int64)
    out["chi_ptr"] = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(tail[ie], minlength=n), out=out["chi_ptr"][1:])
    out["n_children"] = np.diff(out["chi_ptr"])
    df = np.diff(out["f_ptr"])
    n_dis = max(int(is_disease.sum()), 1)
    out["idf"] = np.log1p(n_dis / (1.0 + df))
    return out


def _spec_key(spec: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{a}={b}" for a, b in spec)


def save_diagnosis_index(
    out: Path, spec: Sequence[tuple[str, str]], head: np.ndarray, rel: np.ndarray, tail: np.ndarray,
    rtypes: Sequence[str], is_disease: np.ndarray, n: int,
) -> None:
    arrs = diagnosis_arrays(spec, head, rel, tail, rtypes, is_disease, n)
    d = out / "diag"
    d.mkdir(exist_ok=True)
    for k in DIAG_ARRAYS:
        np.save(d / f"{k}.npy", np.ascontiguousarray(arrs[k]), allow_pickle=False)
    (d / "spec.json").write_text(json.dumps({"spec": _spec_key(spec), "isa_code": int(arrs["isa_code"])}), encoding="utf-8")


class _Ids(Sequence[str]):
    def __init__(self, cui: np.ndarray) -> None:
        self._cui = cui

    def __len__(self) -> int:
        return len(self._cui)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [f"C{int(c):07d}" for c in self._cui[i]]
        return f"C{int(self._cui[int(i)]):07d}"


class _Index:
    """Mapping-like CUI -> row (binary search in the sorted CUI array)."""

    def __init__(self, cui: np.ndarray) -> None:
        self._cui = cui

    def get(self, cid: object, default: Any = None) -> Any:
        if not isinstance(cid, str):
            return default
        m = _CUI.match(cid)
        if not m:
            return default
        v = int(m.group(1))
        j = int(np.searchsorted(self._cui, v))
        return j if j < len(self._cui) and int(self._cui[j]) == v else default

    def __contains__(self, cid: object) -> bool:
        return self.get(cid) is not None

    def __getitem__(self, cid: str) -> int:
        j = self.get(cid)
        if j is None:
            raise UnknownConceptError(cid)
        return j


class _Strs(Sequence[str]):
    def __init__(self, col: Any) -> None:
        self._col = col

    def __len__(self) -> int:
        return len(self._col)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self._col[i].to_pylist()
        return self._col[int(i)].as_py()


def _bisect(col: Any, key: str, lo: int = 0, hi: int | None = None, right: bool = False) -> int:
    hi = len(col) if hi is None else hi
    while lo < hi:
        mid = (lo + hi) // 2
        v = col[mid].as_py()
        if v < key or (right and v == key):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _to_numpy(col: Any) -> np.ndarray:
    """A (chunked) Arrow column as numpy without pyarrow's pandas-backed conversion paths
    (importing pandas cost over a second on a first fuzzy look-up)."""
    if hasattr(col, "combine_chunks"):
        col = col.combine_chunks()
    import pyarrow as pa

    kinds = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
             pa.float32(): np.float32, pa.float64(): np.float64}
    dt = kinds.get(col.type)
    if dt is not None and col.null_count == 0:  # a view of the (mapped) buffer
        dt = np.dtype(dt)
        return np.frombuffer(col.buffers()[1], dtype=dt, count=len(col), offset=col.offset * dt.itemsize)
    return col.to_numpy(zero_copy_only=False)


def _indices(rows: Any) -> Any:
    """int64 Arrow indices from a list or numpy array (``pa.array`` would import pandas)."""
    import pyarrow as pa

    idx = np.ascontiguousarray(rows, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(idx), [None, pa.py_buffer(idx)])


def _open_arrow(path: Path) -> Any:
    import pyarrow as pa

    with pa.memory_map(str(path), "r") as src:
        t = pa.ipc.open_file(src).read_all()
    # mapped without copying: a one-batch column is a plain array, a column of several
    # batches (build_store writes one per ~bucket_rows rows) stays chunked; positional access
    # then resolves the batch by binary search in C++, so nothing is combined in memory
    return pa.table({c: (t.column(c).chunk(0) if t.column(c).num_chunks == 1 else t.column(c)) for c in t.column_names})


class StoreBackend(Backend):
    """A knowledge graph stored on disk by :func:`~graphbrain.kg.store.build.build_store`."""

    name = "store"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = p = Path(path)
        mf = p / "meta.json"
        if not mf.is_file():
            raise DataError(
                "not a graphbrain knowledge-graph store (no meta.json); build one with "
                "`graphbrain kg build --source rrf --store disk --input META --out DIR`",
                source=str(p), reason="format",
            )
        self.meta = json.loads(mf.read_text(encoding="utf-8"))
        from graphbrain.kg.store.build import STORE_FORMAT, STORE_VERSION

        if self.meta.get("format") != STORE_FORMAT or self.meta.get("version") != STORE_VERSION:
            raise DataError(
                f"unsupported store format {self.meta.get('format')!r} v{self.meta.get('version')!r} "
                f"(this graphbrain reads {STORE_FORMAT} v{STORE_VERSION}); rebuild the store",
                source=str(mf), reason="version",
            )

        def ld(name: str) -> np.ndarray:
            # a plain ndarray view of the mapping (no copy): indexing np.memmap objects one
            # element at a time costs tens of microseconds each in the subclass machinery
            return np.asarray(np.load(p / name, mmap_mode="r"))

        self.cui = ld("cui.npy")
        self.head, self.rel, self.tail, self.src = ld("head.npy"), ld("rel.npy"), ld("tail.npy"), ld("src.npy")
        self.out_ptr, self.in_ptr, self.in_edges = ld("out_ptr.npy"), ld("in_ptr.npy"), ld("in_edges.npy")
        self.syn_ptr, self.xref_ptr = ld("syn_ptr.npy"), ld("xref_ptr.npy")
        self.sty_ptr, self.sty = ld("sty_ptr.npy"), ld("sty.npy")
        tabs = {k: _open_arrow(p / f"{k}.arrow") for k in ("concepts", "synonyms", "xrefs", "labels", "codes", "bare", "tokens")}
        self._names = tabs["concepts"].column("name")
        self._defs = tabs["concepts"].column("definition")
        self._syn = tabs["synonyms"].column("s")
        self._xref = tabs["xrefs"].column("x")
        self._labels = tabs["labels"]
        self._codes, self._bare, self._tokens = tabs["codes"], tabs["bare"], tabs["tokens"]
        self.relation_type_names: list[str] = list(self.meta["relation_types"])
        self.sources: list[str] = list(self.meta["sources"])
        self.semantic_types = [SemanticType(*s) for s in self.meta["semantic_types"]]
        # duck-typed like MemoryBackend for graphbrain.kg.diagnose
        self.ids = _Ids(self.cui)
        self.index = _Index(self.cui)
        self.columns = SimpleNamespace(names=_Strs(self._names), relation_types=self.relation_type_names)
        self._fuzzy = _StoreFuzzy(self)  # type: ignore[assignment]
        self._diag: dict[str, Any] = {}

    # ---- records ----------------------------------------------------------------------
    def has_concept(self, concept_id: str) -> bool:
        return concept_id in self.index

    def concept(self, concept_id: str) -> Concept:
        i = self.index.get(concept_id)
        if i is None:
            raise UnknownConceptError(concept_id)
        return self.concept_at(i)

    def concept_at(self, i: int) -> Concept:
        s0, s1 = int(self.syn_ptr[i]), int(self.syn_ptr[i + 1])
        x0, x1 = int(self.xref_ptr[i]), int(self.xref_ptr[i + 1])
        t0, t1 = int(self.sty_ptr[i]), int(self.sty_ptr[i + 1])
        return Concept(
            self.ids[i],
            self._names[i].as_py(),
            tuple(self._syn[s0:s1].to_pylist()),
            tuple(self.semantic_types[int(c)] for c in self.sty[t0:t1]),
            tuple(self._xref[x0:x1].to_pylist()),
            self._defs[i].as_py(),
        )

    def name_of(self, concept_id: str) -> str:
        i = self.index.get(concept_id)
        return self._names[i].as_py() if i is not None else concept_id

    def relation_at(self, e: int) -> Relation:
        e = int(e)
        return Relation(
            self.ids[self.head[e]], self.relation_type_names[int(self.rel[e])], self.ids[self.tail[e]],
            self.sources[int(self.src[e])],
        )

    def iter_concepts(self) -> Iterator[Concept]:
        for i in range(len(self.cui)):
            yield self.concept_at(i)

    def iter_relations(self) -> Iterator[Relation]:
        for e in range(len(self.head)):  # stored sorted by (head, relation, tail, source)
            yield self.relation_at(e)

    def num_concepts(self) -> int:
        return int(len(self.cui))

    def num_relations(self) -> int:
        return int(len(self.head))

    def relation_types(self) -> list[str]:
        return list(self.meta.get("relation_types_used", self.relation_type_names))

    def relation_code(self, relation: str) -> int:
        try:
            return self.relation_type_names.index(relation)
        except ValueError:
            return -1

    # ---- labels and codes -------------------------------------------------------------
    def _range(self, table: Any, column: str, key: str) -> tuple[int, int]:
        col = table.column(column)
        lo = _bisect(col, key)
        return lo, _bisect(col, key, lo, None, right=True)

    def _match_label(self, text: str, *, casefold: bool) -> list[tuple[str, str, str]]:
        kinds = ("name", "synonym")
        norm = text if casefold else normalise_text(text)
        lo, hi = self._range(self._labels, "norm", norm)
        if hi <= lo:
            return []
        part = self._labels.slice(lo, hi - lo)
        out = []
        for lab, c, k in zip(part.column("label").to_pylist(), part.column("concept").to_pylist(), part.column("kind").to_pylist()):
            if casefold or lab == text:
                out.append((self.ids[c], lab, kinds[k]))
        return out

    def _match_code(self, xref: str | None, code: str) -> list[tuple[str, str]]:
        table, key = (self._codes, xref.casefold()) if xref is not None else (self._bare, code.casefold())
        lo, hi = self._range(table, "key", key)
        part = table.slice(lo, hi - lo)
        return [(self.ids[c], x) for c, x in zip(part.column("concept").to_pylist(), part.column("xref").to_pylist())]

    def _all_labels(self) -> list[tuple[str, str, str]]:
        kinds = ("name", "synonym")
        t = self._labels
        return [
            (lab, self.ids[c], kinds[k])
            for lab, c, k in zip(t.column("label").to_pylist(), t.column("concept").to_pylist(), t.column("kind").to_pylist())
        ]

    # ---- edges --------------------------------------------------------------------------
    def edge_ids(self, node: int, rel_codes: np.ndarray | None, direction: str) -> np.ndarray:
        parts = []
        if direction in ("out", "both"):
            parts.append(np.arange(self.out_ptr[node], self.out_ptr[node + 1], dtype=np.int64))
        if direction in ("in", "both"):
            parts.append(np.asarray(self.in_edges[self.in_ptr[node] : self.in_ptr[node + 1]], dtype=np.int64))
        e = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if rel_codes is not None:
            e = e[np.isin(self.rel[e], rel_codes)]
        return e

    def _edges(self, concept_id: str, relations: frozenset[str] | None, direction: str) -> list[Relation]:
        node = self.index[concept_id]
        codes = None if relations is None else np.array([self.relation_code(r) for r in relations], dtype=np.int32)
        return [self.relation_at(int(e)) for e in self.edge_ids(node, codes, direction)]

    # ---- diagnosis ------------------------------------------------------------------------
    def diagnosis_index(self, finding_relations: Sequence[Any]) -> Any:
        """A :class:`~graphbrain.kg.diagnose.DiagnosisIndex` over this store: memory-mapped from
        ``diag/`` for the built-in finding relations, built in memory once for other ones."""
        from graphbrain.kg.diagnose import DiagnosisIndex, _pairs

        spec = tuple(sorted(set(_pairs(finding_relations))))
        key = _spec_key(spec)
        idx = self._diag.get(key)
        if idx is not None:
            return idx
        d = self.path / "diag"
        saved = json.loads((d / "spec.json").read_text(encoding="utf-8")) if (d / "spec.json").is_file() else {}
        if saved.get("spec") == key:
            arrs: dict[str, Any] = {k: np.asarray(np.load(d / f"{k}.npy", mmap_mode="r")) for k in DIAG_ARRAYS}
            arrs["isa_code"] = saved["isa_code"]
        else:
            is_dis = semantic_disease_mask(self.meta["semantic_types"], np.asarray(self.sty_ptr), np.asarray(self.sty))
            arrs = diagnosis_arrays(spec, self.head, self.rel, self.tail, self.relation_type_names, is_dis, len(self.cui))
        idx = DiagnosisIndex.__new__(DiagnosisIndex)
        idx.mem = self  # type: ignore[assignment]
        idx.n = len(self.cui)
        idx.finding_relations = dict(spec)
        for k, v in arrs.items():
            setattr(idx, k, v)
        self._diag[key] = idx
        return idx


class _StoreFuzzy:
    """Whole-word-first fuzzy look-up over the store's token postings (see module doc)."""

    MAX_CANDIDATES = 5000

    def __init__(self, be: StoreBackend) -> None:
        self.be = be

    def _rows(self, token: str) -> np.ndarray:
        t = self.be._tokens
        lo, hi = self.be._range(t, "token", token)
        return _to_numpy(t.column("row").slice(lo, hi - lo))

    def search(self, query: str, *, limit: int = 10, cutoff: float = 0.6) -> list[Match]:
        from graphbrain.kg.lookup import fold_words

        q = normalise_text(query)
        if not q or looks_like_code(q):
            return []
        rows: np.ndarray | None = None
        for w in sorted(set(fold_words(q))):
            r = self._rows(w)
            rows = r if rows is None else np.intersect1d(rows, r, assume_unique=True)
            if not len(rows):
                break
        labels = self.be._labels
        cand = [] if rows is None else rows.tolist()
        norm = labels.column("norm")
        lo = _bisect(norm, q)
        hi = _bisect(norm, q + "\U0010ffff", lo)
        cand.extend(range(lo, min(hi, lo + 200)))
        cand = sorted(set(cand))
        if len(cand) > self.MAX_CANDIDATES:
            import pyarrow.compute as pc

            lens = _to_numpy(pc.utf8_length(labels.column("label").take(_indices(cand))))
            cand = [cand[i] for i in np.argsort(lens, kind="stable")[: self.MAX_CANDIDATES]]
        if not cand:
            return []
        part = labels.take(_indices(cand))
        kinds = ("name", "synonym")
        triples = [
            (lab, self.be.ids[c], kinds[k])
            for lab, c, k in zip(part.column("label").to_pylist(), part.column("concept").to_pylist(), part.column("kind").to_pylist())
        ]
        return FuzzyIndex(triples).search(query, limit=limit, cutoff=cutoff)
