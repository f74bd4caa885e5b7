"""Build an on-disk knowledge-graph store from a UMLS ``META`` folder (streaming RRF).

Same filters and the same resulting graph as :func:`graphbrain.kg.readers.rrf.read_rrf`
(tests compare them), but columnar: pyarrow reads RRF in blocks
(:func:`~graphbrain.kg.readers.rrf_fast.iter_rrf_batches`), every filter and mapping is a
vectorised operation, MRREL rows are spilled to ``K`` head-range bucket files on disk and
sorted and de-duplicated one bucket at a time, so memory grows with the kept MRCONSO rows
(strings, held as Arrow buffers) but not with MRREL, the bulk of a release.

Layout of the store folder (all memory-mapped when opened; see
:class:`graphbrain.kg.store.backend.StoreBackend`)::

    meta.json               format, counts, vocabularies, reader stats
    cui.npy                 int32 CUI numbers, sorted (concept i = "C%07d" % cui[i])
    concepts.arrow          name, definition (Arrow IPC, one row per concept)
    synonyms.arrow + syn_ptr.npy       per-concept synonyms (CSR)
    xrefs.arrow + xref_ptr.npy         per-concept cross-references (CSR)
    sty_ptr.npy, sty.npy               per-concept semantic-type codes (CSR)
    head.npy rel.npy tail.npy src.npy  edges sorted by (head, relation, tail, source)
    out_ptr.npy, in_ptr.npy, in_edges.npy   CSR adjacency
    labels.arrow            (norm, label, concept, kind) sorted by norm: exact / ci look-up
    codes.arrow, bare.arrow (key, concept, xref) sorted by key: code look-up
    tokens.arrow            (token, label row) sorted: whole-word fuzzy look-up
    diag/*.npy              the diagnosis index for the built-in finding relations
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from graphbrain.errors import DataError
from graphbrain.kg.model import normalise_source, relation_name
from graphbrain.kg.readers.rrf import _REL_NAMES, SUPPRESSED, read_mrfiles
from graphbrain.kg.readers.rrf_fast import iter_rrf_batches

STORE_FORMAT = "graphbrain-kg-store"
STORE_VERSION = 1
_EDGE = np.dtype([("h", "<i4"), ("r", "<i2"), ("s", "<i2"), ("t", "<i4")])
_CUI_RE = r"^C\d{7}$"


def _pa() -> tuple[Any, Any, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.feather as feather

    return pa, pc, feather


def _save(path: Path, arr: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(arr), allow_pickle=False)


def _write_arrow(path: Path, table: Any) -> None:
    _, _, feather = _pa()
    # one record batch: positional access on the mapped file is then O(1) (binary search)
    table = table.combine_chunks()
    feather.write_feather(table, str(path), compression="uncompressed", chunksize=max(table.num_rows, 1))


def _map_unique(values: Any, fn: Any, cache: dict[str, Any]) -> np.ndarray:
    """``fn`` applied to each distinct string of an Arrow array (vectorised through a dictionary)."""
    _, pc, _ = _pa()
    enc = pc.dictionary_encode(values)
    if hasattr(enc, "combine_chunks"):
        enc = enc.combine_chunks()
    out = []
    for v in enc.dictionary.to_pylist():
        if v not in cache:
            cache[v] = fn(v)
        out.append(cache[v])
    codes = enc.indices.to_numpy(zero_copy_only=False)
    return np.asarray(out, dtype=object)[codes] if out else np.zeros(0, dtype=object)


def _codes(values: Any, fn: Any, cache: dict[str, Any], vocab: dict[str, int]) -> np.ndarray:
    """int16 codes in ``vocab`` (grown as needed) of ``fn(value)`` for an Arrow string array."""
    _, pc, _ = _pa()
    enc = pc.dictionary_encode(values)
    if hasattr(enc, "combine_chunks"):
        enc = enc.combine_chunks()
    table = []
    for v in enc.dictionary.to_pylist():
        if v not in cache:
            cache[v] = fn(v)
        table.append(vocab.setdefault(cache[v], len(vocab)))
    if len(vocab) > np.iinfo(np.int16).max:
        raise DataError(f"more than {np.iinfo(np.int16).max} distinct relation types or sources", reason="too_many")
    idx = enc.indices.to_numpy(zero_copy_only=False)
    return np.asarray(table, dtype=np.int16)[idx] if table else np.zeros(len(idx), np.int16)


def _normalise_labels(arr: Any) -> Any:
    """Vectorised :func:`graphbrain.kg.lookup.normalise_text` (lower case, spaces collapsed)."""
    _, pc, _ = _pa()
    low = pc.utf8_lower(arr)
    low = pc.replace_substring_regex(low, pattern=r"\s+", replacement=" ")
    return pc.utf8_trim(low, characters=" ")


def build_store(
    meta_dir: str | Path,
    out_dir: str | Path,
    *,
    languages: Iterable[str] | None = ("ENG",),
    sources: Iterable[str] | None = None,
    include_suppressed: bool = False,
    on_error: str = "raise",
    buckets: int | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Stream the RRF files of ``meta_dir`` into a store folder ``out_dir``; returns the stats.

    Filters as in :func:`~graphbrain.kg.readers.rrf.read_rrf`. ``buckets``: number of MRREL
    spill files (default: one per ~4M MRREL bytes-worth of rows, at least 4).
    """
    pa, pc, _ = _pa()
    t0 = time.perf_counter()
    meta_dir, out = Path(meta_dir), Path(out_dir)
    if not meta_dir.is_dir():
        raise DataError("not a folder", source=str(meta_dir), reason="missing")
    conso_path = meta_dir / "MRCONSO.RRF"
    if not conso_path.is_file():
        raise DataError("MRCONSO.RRF not found", source=str(conso_path), reason="missing")
    if out.exists():
        if not overwrite and any(out.iterdir()):
            raise DataError("the store folder exists and is not empty (pass overwrite=True)", source=str(out), reason="exists")
        if overwrite and (out / "meta.json").is_file():
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diag").mkdir(exist_ok=True)
    layout = read_mrfiles(meta_dir)
    langs = None if languages is None else pa.array(sorted({x.upper() for x in languages}))
    sabs = None if sources is None else {s.upper() for s in sources}
    supp = pa.array(sorted(SUPPRESSED))
    stats: Counter[str] = Counter()
    bar = _bar(progress)

    # ---- MRCONSO -------------------------------------------------------------------------
    cols = layout["MRCONSO.RRF"]
    keep = ["CUI", "LAT", "TS", "STT", "ISPREF", "SAB", "CODE", "STR", "SUPPRESS"]
    parts: dict[str, list[Any]] = {k: [] for k in ("cui", "rank", "str", "sab", "code")}
    seq = 0
    for b in iter_rrf_batches(conso_path, cols, keep, on_error=on_error, stats=stats):
        n = b.num_rows
        cui = b.column("CUI")
        ok = pc.match_substring_regex(cui, _CUI_RE)
        bad = n - pc.sum(ok).as_py() if n else 0
        if bad:
            if on_error != "skip":
                first = int(np.flatnonzero(~ok.to_numpy(zero_copy_only=False))[0])
                raise DataError(
                    f"invalid CUI {cui[first].as_py()!r} (expected C followed by 7 digits)",
                    source=f"{conso_path}:row {seq + first + 1}", reason="malformed",
                )
            stats["MRCONSO.RRF:malformed"] += bad
        mask = ok
        if langs is not None:
            m2 = pc.is_in(b.column("LAT"), value_set=langs)
            stats["MRCONSO.RRF:filtered_language"] += pc.sum(pc.and_(mask, pc.invert(m2))).as_py() or 0
            mask = pc.and_(mask, m2)
        if sabs is not None:
            m2 = pc.is_in(pc.utf8_upper(b.column("SAB")), value_set=pa.array(sorted(sabs)))
            stats["MRCONSO.RRF:filtered_source"] += pc.sum(pc.and_(mask, pc.invert(m2))).as_py() or 0
            mask = pc.and_(mask, m2)
        if not include_suppressed:
            m2 = pc.invert(pc.is_in(b.column("SUPPRESS"), value_set=supp))
            stats["MRCONSO.RRF:filtered_suppressed"] += pc.sum(pc.and_(mask, pc.invert(m2))).as_py() or 0
            mask = pc.and_(mask, m2)
        f = b.filter(mask)
        stats["MRCONSO.RRF:kept"] += f.num_rows
        seq += n
        if not f.num_rows:
            continue
        parts["cui"].append(pc.cast(pc.utf8_slice_codeunits(f.column("CUI"), 1), pa.int32()).to_numpy())
        rank = (
            pc.equal(f.column("TS"), "P").to_numpy(zero_copy_only=False).astype(np.int8) * 4
            + pc.equal(f.column("STT"), "PF").to_numpy(zero_copy_only=False).astype(np.int8) * 2
            + pc.equal(f.column("ISPREF"), "Y").to_numpy(zero_copy_only=False).astype(np.int8)
        )
        parts["rank"].append(rank)
        parts["str"].append(f.column("STR"))
        parts["sab"].append(f.column("SAB"))
        parts["code"].append(f.column("CODE"))
        bar.update(n)
    if not parts["cui"]:
        raise DataError(
            "no MRCONSO row was kept: check the language and source filters (languages=None keeps all)",
            source=str(conso_path), reason="empty",
        )
    cui = np.concatenate(parts.pop("cui"))
    rank = np.concatenate(parts.pop("rank"))
    strs = pa.chunked_array(parts.pop("str")).combine_chunks()
    ucui = np.unique(cui)
    n_con = len(ucui)
    idx = np.searchsorted(ucui, cui).astype(np.int32)
    del cui
    # preferred name: best (TS=P, STT=PF, ISPREF=Y), first row among equals
    order = np.lexsort((np.arange(len(idx)), -rank.astype(np.int16), idx))
    first = np.ones(len(order), dtype=bool)
    first[1:] = idx[order][1:] != idx[order][:-1]
    pref_row = order[first]
    names = strs.take(pa.array(pref_row))
    del order, first, rank
    # synonyms: distinct strings per concept, minus the name and the empty string
    t = pa.table({"i": idx, "s": strs}).group_by(["i", "s"]).aggregate([])
    ti = t.column("i").to_numpy()
    keep_syn = pc.and_(
        pc.not_equal(t.column("s"), names.take(pa.array(ti))), pc.not_equal(t.column("s"), "")
    )
    syn = t.filter(keep_syn)
    syn = syn.take(pc.sort_indices(syn, [("i", "ascending"), ("s", "ascending")]))
    syn_i = syn.column("i").to_numpy()
    _save(out / "syn_ptr.npy", _ptr(syn_i, n_con))
    _write_arrow(out / "synonyms.arrow", pa.table({"s": syn.column("s")}))
    # cross-references SAB:CODE (code neither empty nor NOCODE)
    sab = pa.chunked_array(parts.pop("sab")).combine_chunks()
    code = pa.chunked_array(parts.pop("code")).combine_chunks()
    has = pc.and_(pc.not_equal(code, ""), pc.not_equal(code, "NOCODE")).to_numpy(zero_copy_only=False)
    hidx = np.flatnonzero(has)
    nsab = pa.array(_map_unique(sab.take(pa.array(hidx)), normalise_source, {}).tolist(), pa.string())
    xref = pc.binary_join_element_wise(nsab, code.take(pa.array(hidx)), ":")
    xt = pa.table({"i": idx[hidx], "x": xref}).group_by(["i", "x"]).aggregate([])
    xt = xt.take(pc.sort_indices(xt, [("i", "ascending"), ("x", "ascending")]))
    x_i = xt.column("i").to_numpy()
    _save(out / "xref_ptr.npy", _ptr(x_i, n_con))
    _write_arrow(out / "xrefs.arrow", pa.table({"x": xt.column("x")}))
    del sab, code, nsab, xref, strs, idx
    _save(out / "cui.npy", ucui.astype(np.int32))

    # ---- MRSTY ---------------------------------------------------------------------------
    sty_path = meta_dir / "MRSTY.RRF"
    sty_list: list[tuple[str, str, str]] = []
    sty_ptr = np.zeros(n_con + 1, dtype=np.int64)
    sty_codes = np.zeros(0, dtype=np.int16)
    if sty_path.is_file():
        pi, pt = [], []
        sty_index: dict[tuple[str, str, str], int] = {}
        for b in iter_rrf_batches(sty_path, layout["MRSTY.RRF"], ["CUI", "TUI", "STN", "STY"], on_error=on_error, stats=stats):
            ok = pc.match_substring_regex(b.column("CUI"), _CUI_RE)
            b = b.filter(ok)
            c = pc.cast(pc.utf8_slice_codeunits(b.column("CUI"), 1), pa.int32()).to_numpy()
            j = np.searchsorted(ucui, c)
            j = np.minimum(j, n_con - 1)
            inside = ucui[j] == c
            if not inside.any():
                continue
            rows = np.flatnonzero(inside)
            tui = b.column("TUI").to_pylist()
            sty = b.column("STY").to_pylist()
            stn = b.column("STN").to_pylist()
            for r in rows.tolist():
                key = (tui[r], sty[r], stn[r])
                if key not in sty_index:
                    sty_index[key] = len(sty_index)
            pi.append(j[rows].astype(np.int32))
            pt.append(np.array([sty_index[(tui[r], sty[r], stn[r])] for r in rows.tolist()], dtype=np.int16))
        sty_list = list(sty_index)
        if pi:
            si, sc = np.concatenate(pi), np.concatenate(pt)
            tuirank = np.argsort(np.argsort([s[0] for s in sty_list], kind="stable"), kind="stable")
            pairs = np.unique(np.stack([si.astype(np.int64), tuirank[sc].astype(np.int64), sc.astype(np.int64)], 1), axis=0)
            sty_ptr = _ptr(pairs[:, 0], n_con)
            sty_codes = pairs[:, 2].astype(np.int16)
    _save(out / "sty_ptr.npy", sty_ptr)
    _save(out / "sty.npy", sty_codes)

    # ---- MRDEF (first kept definition per concept) -----------------------------------------
    defs = np.full(n_con, None, dtype=object)
    def_path = meta_dir / "MRDEF.RRF"
    if def_path.is_file():
        for b in iter_rrf_batches(def_path, layout["MRDEF.RRF"], ["CUI", "SAB", "DEF", "SUPPRESS"], on_error=on_error, stats=stats):
            m = pc.match_substring_regex(b.column("CUI"), _CUI_RE)
            if sabs is not None:
                m = pc.and_(m, pc.is_in(pc.utf8_upper(b.column("SAB")), value_set=pa.array(sorted(sabs))))
            if not include_suppressed:
                m = pc.and_(m, pc.invert(pc.is_in(b.column("SUPPRESS"), value_set=supp)))
            b = b.filter(m)
            if not b.num_rows:
                continue
            c = pc.cast(pc.utf8_slice_codeunits(b.column("CUI"), 1), pa.int32()).to_numpy()
            j = np.minimum(np.searchsorted(ucui, c), n_con - 1)
            d = b.column("DEF").to_pylist()
            for r in np.flatnonzero(ucui[j] == c).tolist():
                if defs[j[r]] is None:
                    defs[j[r]] = d[r]
    defs_arr = pa.array([x or "" for x in defs.tolist()], pa.string())
    del defs
    _write_arrow(out / "concepts.arrow", pa.table({"name": names, "definition": defs_arr}))

    # ---- look-up tables -------------------------------------------------------------------
    _build_label_tables(out, names, syn, syn_i, xt, x_i)
    del syn, xt, syn_i, x_i, defs_arr

    # ---- MRREL: filter + map per block, spill to head-range buckets ----------------------------
    rel_path = meta_dir / "MRREL.RRF"
    rel_names: dict[str, int] = {}
    src_names: dict[str, int] = {}
    kept = np.zeros(int(ucui[-1]) + 2, dtype=bool)
    kept[ucui] = True
    lut = np.full(len(kept), -1, dtype=np.int32)
    lut[ucui] = np.arange(n_con, dtype=np.int32)
    n_spilled = 0
    tmp = out / "_spill"
    tmp.mkdir(exist_ok=True)
    if buckets is None:
        size = rel_path.stat().st_size if rel_path.is_file() else 0
        buckets = int(min(256, max(4, size // (64 << 20))))
    handles = [open(tmp / f"b{k:03d}.bin", "wb") for k in range(buckets)]
    try:
        if rel_path.is_file():
            rkeep = ["CUI1", "REL", "CUI2", "RELA", "SAB", "SUPPRESS"]
            name_cache: dict[str, str] = {}
            src_cache: dict[str, str] = {}
            rseq = 0
            for b in iter_rrf_batches(rel_path, layout["MRREL.RRF"], rkeep, on_error=on_error, stats=stats):
                n = b.num_rows
                c1s, c2s = b.column("CUI1"), b.column("CUI2")
                ok = pc.and_(pc.match_substring_regex(c1s, _CUI_RE), pc.match_substring_regex(c2s, _CUI_RE))
                bad = n - (pc.sum(ok).as_py() or 0)
                if bad:
                    if on_error != "skip":
                        first = int(np.flatnonzero(~ok.to_numpy(zero_copy_only=False))[0])
                        raise DataError(
                            f"invalid CUI1/CUI2 {c1s[first].as_py()!r}/{c2s[first].as_py()!r} (expected C followed by 7 digits)",
                            source=f"{rel_path}:row {rseq + first + 1}", reason="malformed",
                        )
                    stats["MRREL.RRF:malformed"] += bad
                rseq += n
                mask = ok
                if sabs is not None:
                    m2 = pc.is_in(pc.utf8_upper(b.column("SAB")), value_set=pa.array(sorted(sabs)))
                    stats["MRREL.RRF:filtered_source"] += pc.sum(pc.and_(mask, pc.invert(m2))).as_py() or 0
                    mask = pc.and_(mask, m2)
                if not include_suppressed:
                    m2 = pc.invert(pc.is_in(b.column("SUPPRESS"), value_set=supp))
                    stats["MRREL.RRF:filtered_suppressed"] += pc.sum(pc.and_(mask, pc.invert(m2))).as_py() or 0
                    mask = pc.and_(mask, m2)
                m2 = pc.not_equal(c1s, c2s)
                stats["MRREL.RRF:self_loop"] += pc.sum(pc.and_(mask, pc.invert(m2))).as_py() or 0
                mask = pc.and_(mask, m2)
                f = b.filter(mask)
                bar.update(n)
                if not f.num_rows:
                    continue
                c1 = pc.cast(pc.utf8_slice_codeunits(f.column("CUI1"), 1), pa.int32()).to_numpy()
                c2 = pc.cast(pc.utf8_slice_codeunits(f.column("CUI2"), 1), pa.int32()).to_numpy()
                inside = (c1 < len(kept)) & (c2 < len(kept))
                inside[inside] = kept[c1[inside]] & kept[c2[inside]]
                stats["MRREL.RRF:dangling"] += int((~inside).sum())
                if not inside.any():
                    continue
                f = f.filter(pa.array(inside))
                c1, c2 = lut[c1[inside]], lut[c2[inside]]
                rel = f.column("REL")
                rela = f.column("RELA")
                par = pc.or_(pc.equal(rel, "PAR"), pc.equal(rela, "inverse_isa")).to_numpy(zero_copy_only=False)
                chd = pc.or_(pc.equal(rel, "CHD"), pc.equal(rela, "isa")).to_numpy(zero_copy_only=False) & ~par
                key = pc.if_else(pc.equal(rela, ""), pc.binary_join_element_wise("\x00", rel, ""), rela)
                rcode = _codes(key, lambda k: relation_name(k) if not k.startswith("\x00") else _REL_NAMES.get(k[1:], relation_name(k[1:])), name_cache, rel_names)
                rcode[par | chd] = rel_names.setdefault("is_a", len(rel_names))
                scode = _codes(f.column("SAB"), normalise_source, src_cache, src_names)
                rec = np.empty(len(c1), dtype=_EDGE)
                rec["h"] = np.where(par, c1, c2)
                rec["t"] = np.where(par, c2, c1)
                rec["r"], rec["s"] = rcode, scode
                bk = (rec["h"].astype(np.int64) * buckets) // n_con
                order = np.argsort(bk, kind="stable")
                rec, bk = rec[order], bk[order]
                cuts = np.searchsorted(bk, np.arange(buckets + 1))
                for k in range(buckets):
                    if cuts[k + 1] > cuts[k]:
                        rec[cuts[k] : cuts[k + 1]].tofile(handles[k])
                n_spilled += len(rec)
    finally:
        for h in handles:
            h.close()

    # ---- sort + de-duplicate each bucket, write the edge columns -------------------------------
    rtypes = sorted(rel_names)
    sources_sorted = sorted(src_names)
    rmap = np.zeros(max(len(rel_names), 1), dtype=np.int16)
    for nme, c in rel_names.items():
        rmap[c] = rtypes.index(nme)
    smap = np.zeros(max(len(src_names), 1), dtype=np.int16)
    for nme, c in src_names.items():
        smap[c] = sources_sorted.index(nme)
    n_edges = 0
    files = {k: open(out / f"_{k}.bin", "wb") for k in ("h", "r", "t", "s")}
    try:
        for k in range(buckets):
            p = tmp / f"b{k:03d}.bin"
            rec = np.fromfile(p, dtype=_EDGE)
            p.unlink()
            if not len(rec):
                continue
            rec["r"], rec["s"] = rmap[rec["r"]], smap[rec["s"]]
            o = np.lexsort((rec["s"], rec["t"], rec["r"], rec["h"]))
            rec = rec[o]
            dup = np.zeros(len(rec), dtype=bool)
            dup[1:] = (
                (rec["h"][1:] == rec["h"][:-1]) & (rec["r"][1:] == rec["r"][:-1])
                & (rec["t"][1:] == rec["t"][:-1]) & (rec["s"][1:] == rec["s"][:-1])
            )
            stats["MRREL.RRF:duplicate"] += int(dup.sum())
            rec = rec[~dup]
            for f_ in ("h", "r", "t", "s"):
                np.ascontiguousarray(rec[f_]).tofile(files[f_])
            n_edges += len(rec)
    finally:
        for fh in files.values():
            fh.close()
        shutil.rmtree(tmp, ignore_errors=True)
    stats["MRREL.RRF:kept"] += n_edges
    dtypes = {"h": np.int32, "r": np.int16, "t": np.int32, "s": np.int16}
    final = {"h": "head", "r": "rel", "t": "tail", "s": "src"}
    for k, dt in dtypes.items():
        raw = np.memmap(out / f"_{k}.bin", dtype=dt, mode="r", shape=(n_edges,)) if n_edges else np.zeros(0, dt)
        arr = np.lib.format.open_memmap(out / f"{final[k]}.npy", mode="w+", dtype=dt, shape=(n_edges,))
        if n_edges:
            arr[:] = raw
        arr.flush()
        del arr, raw
        (out / f"_{k}.bin").unlink()
    head = np.load(out / "head.npy", mmap_mode="r")
    tail = np.load(out / "tail.npy", mmap_mode="r")
    rel = np.load(out / "rel.npy", mmap_mode="r")
    _save(out / "out_ptr.npy", _ptr(head, n_con))
    # in-edges: by (tail, relation, head), as the in-memory backend orders them
    in_edges = np.lexsort((head, rel, tail)).astype(np.int64) if n_edges else np.zeros(0, np.int64)
    _save(out / "in_edges.npy", in_edges)
    _save(out / "in_ptr.npy", _ptr(tail, n_con))
    del in_edges

    # ---- diagnosis index for the built-in finding relations --------------------------------
    from graphbrain.kg.store.backend import save_diagnosis_index, semantic_disease_mask

    is_disease = semantic_disease_mask(sty_list, sty_ptr, sty_codes)
    try:
        from graphbrain.kg.diagnose import detect_finding_relations

        spec = tuple(sorted(detect_finding_relations(rtypes).items()))
    except ImportError:  # pragma: no cover
        spec = ()
    meta = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "concepts": int(n_con),
        "relations": int(n_edges),
        "relation_types": rtypes,
        "relation_types_used": sorted({rtypes[i] for i in np.unique(rel)}) if n_edges else [],
        "sources": sources_sorted,
        "semantic_types": [list(s) for s in sty_list],
        "stats": dict(sorted(stats.items())),
        "metadata": {"source": "UMLS Metathesaurus (user-supplied)", "rrf_stats": dict(sorted(stats.items()))},
        "diagnosis": [],
        "build_seconds": None,
    }
    if spec:
        save_diagnosis_index(out, spec, head, rel, tail, rtypes, is_disease, n_con)
        meta["diagnosis"] = [list(p) for p in spec]
    del head, tail, rel
    meta["build_seconds"] = round(time.perf_counter() - t0, 3)
    (out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    bar.close()
    return meta


def _ptr(keys: np.ndarray, n: int) -> np.ndarray:
    ptr = np.zeros(n + 1, dtype=np.int64)
    if len(keys):
        np.cumsum(np.bincount(np.asarray(keys), minlength=n), out=ptr[1:])
    return ptr


def _build_label_tables(out: Path, names: Any, syn: Any, syn_i: np.ndarray, xt: Any, x_i: np.ndarray) -> None:
    pa, pc, _ = _pa()
    n = len(names)
    label = pa.chunked_array([names, syn.column("s")]).combine_chunks()
    concept = np.concatenate([np.arange(n, dtype=np.int32), syn_i.astype(np.int32)])
    kind = np.concatenate([np.zeros(n, np.int8), np.ones(len(syn_i), np.int8)])
    norm = _normalise_labels(label)
    t = pa.table({"norm": norm, "label": label, "concept": concept, "kind": kind})
    t = t.take(pc.sort_indices(t, [("norm", "ascending"), ("concept", "ascending"), ("kind", "ascending"), ("label", "ascending")]))
    _write_arrow(out / "labels.arrow", t)
    # whole-word postings: folded tokens of each label row
    from graphbrain.kg.lookup import fold_words

    toks = pc.utf8_lower(t.column("label"))
    toks = pc.replace_substring(toks, pattern="'s ", replacement=" ")
    toks = pc.replace_substring(toks, pattern="\u2019s ", replacement=" ")
    toks = pc.replace_substring_regex(toks, pattern="('|\u2019)s$", replacement="")
    toks = pc.replace_substring_regex(toks, pattern=r"[^\pL\pN\pM_\s]+", replacement=" ")
    sp = pc.utf8_split_whitespace(toks)
    flat = pc.list_flatten(sp)
    rows = pc.list_parent_indices(sp).to_numpy()
    ln = pc.utf8_length(flat)
    ies = pc.and_(pc.ends_with(flat, "ies"), pc.greater(ln, 4))
    plural = pc.and_(
        pc.and_(pc.ends_with(flat, "s"), pc.greater(ln, 3)),
        pc.invert(pc.or_(pc.or_(pc.ends_with(flat, "ss"), pc.ends_with(flat, "us")), pc.ends_with(flat, "is"))),
    )
    stem = pc.if_else(
        ies,
        pc.binary_join_element_wise(pc.utf8_slice_codeunits(flat, 0, -3), "y", ""),
        pc.if_else(plural, pc.utf8_slice_codeunits(flat, 0, -1), flat),
    )
    del fold_words  # same rules as graphbrain.kg.lookup.fold_words (tests compare)
    tt = pa.table({"token": stem, "row": rows.astype(np.int64)}).group_by(["token", "row"]).aggregate([])
    tt = tt.take(pc.sort_indices(tt, [("token", "ascending"), ("row", "ascending")]))
    _write_arrow(out / "tokens.arrow", tt)
    # codes: SAB:CODE and bare CODE, case-folded
    xl = pc.utf8_lower(xt.column("x"))
    bare = pc.replace_substring_regex(xl, pattern=r"^[^:]*:", replacement="", max_replacements=1)
    for name, key in (("codes", xl), ("bare", bare)):
        ct = pa.table({"key": key, "concept": x_i.astype(np.int32), "xref": xt.column("x")})
        ct = ct.take(pc.sort_indices(ct, [("key", "ascending"), ("concept", "ascending"), ("xref", "ascending")]))
        _write_arrow(out / f"{name}.arrow", ct)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(progress: bool) -> Any:
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(unit=" rows", unit_scale=True, desc="RRF -> store")
