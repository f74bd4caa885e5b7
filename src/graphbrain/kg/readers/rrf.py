"""UMLS Metathesaurus RRF reader (MRCONSO, MRSTY, MRDEF, MRREL, MRSAB), streaming.

Files are read line by line (memory grows with the number of *kept concepts*, never with
the number of rows). Column layouts come from ``MRFILES.RRF`` when the release has one and
otherwise from the documented defaults below. Rows end with a trailing ``|``.

Filters: ``languages`` (MRCONSO ``LAT``, default English), ``sources`` (``SAB``; ``None``
keeps all), suppressed rows (``SUPPRESS`` in ``O``, ``E``, ``Y``) dropped unless
``include_suppressed``. A malformed row (wrong number of fields, bad CUI) raises
:class:`~graphbrain.errors.DataError` naming the file and line, or with
``on_error="skip"`` is skipped and counted in :attr:`RRFResult.stats`.

MRREL direction: ``REL``/``RELA`` give the relation *of CUI2 to CUI1*, so a row becomes
``CUI2 -RELA-> CUI1``; hierarchical rows become ``is_a`` edges from child to parent
(``PAR``: CUI1 is_a CUI2; ``CHD``: CUI2 is_a CUI1). Without ``RELA`` the ``REL`` code is
mapped to a readable type (``RB`` -> ``broader_than``, ``RO`` -> ``related_to`` ...).

graphbrain never ships UMLS content; users point this reader at their own licensed release.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphbrain.errors import DataError
from graphbrain.kg.model import (
    IS_A,
    Concept,
    Relation,
    SemanticType,
    normalise_source,
    relation_name,
)
from graphbrain.kg.readers.common import (
    ReadError,
    check_not_empty,
    decode_lines,
    skip,
    skipped_by_reason,
)

DEFAULT_COLUMNS: dict[str, list[str]] = {
    "MRCONSO.RRF": "CUI,LAT,TS,LUI,STT,SUI,ISPREF,AUI,SAUI,SCUI,SDUI,SAB,TTY,CODE,STR,SRL,SUPPRESS,CVF".split(","),
    "MRSTY.RRF": "CUI,TUI,STN,STY,ATUI,CVF".split(","),
    "MRDEF.RRF": "CUI,AUI,ATUI,SATUI,SAB,DEF,SUPPRESS,CVF".split(","),
    "MRREL.RRF": "CUI1,AUI1,STYPE1,REL,CUI2,AUI2,STYPE2,RELA,RUI,SRUI,SAB,SL,RG,DIR,SUPPRESS,CVF".split(","),
    "MRSAB.RRF": (
        "VCUI,RCUI,VSAB,RSAB,SON,SF,SVER,VSTART,VEND,IMETA,RMETA,SLC,SCC,SRL,TFR,CFR,CXTY,TTYL,"
        "ATNL,LAT,CENC,CURVER,SABIN,SSN,SCIT"
    ).split(","),
}
SUPPRESSED = frozenset({"O", "E", "Y"})
_CUI = re.compile(r"^C\d{7}$")
_REL_NAMES = {
    "RB": "broader_than",
    "RN": "narrower_than",
    "RO": "related_to",
    "RL": "similar_to",
    "RQ": "possibly_synonymous",
    "SY": "synonym_of",
    "SIB": "sibling_of",
    "AQ": "allowed_qualifier",
    "QB": "can_be_qualified_by",
    "RU": "related_unspecified",
    "XR": "not_related",
}


@dataclass
class RRFResult:
    concepts: list[Concept]
    relations: list[Relation]
    stats: Counter[str] = field(default_factory=Counter)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def skipped(self) -> dict[str, int]:
        """Skipped rows per ``FILE:reason`` (``encoding``, ``fields``, ``cui``)."""
        return skipped_by_reason(self.stats)

    def to_kg(self, **kw: Any) -> Any:
        from graphbrain.kg.graph import KnowledgeGraph

        meta = {"source": "UMLS Metathesaurus (user-supplied)", "rrf_stats": dict(self.stats),
                "skipped": self.skipped}
        return KnowledgeGraph.from_records(self.concepts, self.relations, metadata=meta, **kw)


def read_mrfiles(meta_dir: str | Path) -> dict[str, list[str]]:
    """Column layouts: ``MRFILES.RRF`` entries over the defaults."""
    layout = {k: list(v) for k, v in DEFAULT_COLUMNS.items()}
    p = Path(meta_dir) / "MRFILES.RRF"
    if p.is_file():
        for lineno, fields, _ in _split_lines(p, None, "raise", Counter()):
            if len(fields) < 3:
                raise ReadError("MRFILES.RRF row needs FIL, DES and FMT", file=p, line=lineno, column=1)
            layout[fields[0]] = fields[2].split(",")
    return layout


def _split_lines(
    path: Path, ncols: int | None, on_error: str, stats: Counter[str], progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, list[str], str]]:
    """``(line, fields, text)`` of an RRF file. A row has ``ncols`` fields and ends with ``|``;
    a row without the trailing ``|`` but with ``ncols`` fields is accepted and counted
    (``FILE:no_trailing_pipe``); any other count is malformed."""
    for lineno, line in decode_lines(path, on_error=on_error, stats=stats):
        if progress is not None:
            progress(len(line) + 1)
        if not line:
            continue
        fields = line.split("|")
        if ncols is None:
            if fields[-1] == "":
                fields.pop()
        elif len(fields) == ncols + 1 and fields[-1] == "":
            fields.pop()
        elif len(fields) == ncols:
            stats[f"{path.name}:no_trailing_pipe"] += 1
        else:
            if on_error == "skip":
                skip(stats, path.name, "fields")
                continue
            found = len(fields) - 1 if fields[-1] == "" else len(fields)
            col = len(line) + 1 if found < ncols else len("|".join(fields[:ncols])) + 2
            raise ReadError(
                f"expected {ncols} '|'-separated fields, found {found} (pass on_error='skip' / "
                "--skip-malformed to skip and count malformed rows)",
                file=path,
                line=lineno,
                column=col,
                reason="fields",
            )
        yield lineno, fields, line


def _rows(
    path: Path, columns: list[str], on_error: str, stats: Counter[str], progress: bool
) -> Iterator[tuple[int, dict[str, str]]]:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not path.is_file():
        raise DataError("RRF file not found", source=str(path), reason="missing")
    bar = None
    cb = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, desc=path.name)
        cb = bar.update
    try:
        for lineno, fields, _ in _split_lines(path, len(columns), on_error, stats, cb):
            stats[f"{path.name}:rows"] += 1
            yield lineno, dict(zip(columns, fields))
    finally:
        if bar is not None:
            bar.close()


def iter_rrf(
    path: str | Path,
    columns: list[str],
    *,
    on_error: str = "raise",
    stats: Counter[str] | None = None,
    progress: bool = False,
) -> Iterator[dict[str, str]]:
    """Rows of one RRF file as dicts keyed by column name (streaming)."""
    stats = stats if stats is not None else Counter()
    for _, row in _rows(Path(path), columns, on_error, stats, progress):
        yield row


def _bad_cui(
    row: dict[str, str], key: str, path: Path, lineno: int, on_error: str, stats: Counter[str]
) -> bool:
    cui = row[key]
    if _CUI.match(cui):
        return False
    if on_error == "skip":
        skip(stats, path.name, "cui")
        return True
    col = 1
    for k, v in row.items():
        if k == key:
            break
        col += len(v) + 1
    raise ReadError(
        f"invalid {key} {cui!r} (expected C followed by 7 digits)",
        file=path,
        line=lineno,
        column=col,
        reason="cui",
    )


def read_rrf(
    meta_dir: str | Path,
    *,
    languages: Iterable[str] | None = ("ENG",),
    sources: Iterable[str] | None = None,
    include_suppressed: bool = False,
    on_error: str = "raise",
    relations: bool = True,
    relation_types: Iterable[str] | None = None,
    progress: bool = False,
    allow_empty: bool = False,
) -> RRFResult:
    """Read a Metathesaurus ``META`` folder into concepts and relations (see module doc).

    ``relation_types`` keeps only MRREL rows whose ``RELA`` (or ``REL``) is listed.
    Concepts keep English names by default; CUIs with no kept MRCONSO row are dropped and
    relations touching them are counted as ``MRREL.RRF:dangling``. Rows that are not UTF-8
    or have the wrong number of fields or a bad CUI raise :class:`ReadError` (file, line,
    column) or, with ``on_error="skip"``, are counted per reason (:attr:`RRFResult.skipped`).
    No concept kept raises :class:`EmptyGraphError` unless ``allow_empty``.
    """
    meta_dir = Path(meta_dir)
    if not meta_dir.is_dir():
        raise DataError("not a folder", source=str(meta_dir), reason="missing")
    layout = read_mrfiles(meta_dir)
    langs = None if languages is None else {x.upper() for x in languages}
    sabs = None if sources is None else {s.upper() for s in sources}
    stats: Counter[str] = Counter()
    # MRCONSO -> names, synonyms, codes
    conso = meta_dir / "MRCONSO.RRF"
    best: dict[str, tuple[tuple[bool, bool, bool], str]] = {}
    names: dict[str, set[str]] = {}
    xrefs: dict[str, set[str]] = {}
    for lineno, row in _rows(conso, layout["MRCONSO.RRF"], on_error, stats, progress):
        cui = row["CUI"]
        if _bad_cui(row, "CUI", conso, lineno, on_error, stats):
            continue
        if langs is not None and row["LAT"] not in langs:
            stats["MRCONSO.RRF:filtered_language"] += 1
            continue
        if sabs is not None and row["SAB"].upper() not in sabs:
            stats["MRCONSO.RRF:filtered_source"] += 1
            continue
        if not include_suppressed and row["SUPPRESS"] in SUPPRESSED:
            stats["MRCONSO.RRF:filtered_suppressed"] += 1
            continue
        s = row["STR"]
        rank = (row["TS"] == "P", row["STT"] == "PF", row["ISPREF"] == "Y")
        old = best.get(cui)
        if old is None or rank > old[0]:
            best[cui] = (rank, s)
        names.setdefault(cui, set()).add(s)
        code = row["CODE"]
        if code and code != "NOCODE":
            xrefs.setdefault(cui, set()).add(f"{normalise_source(row['SAB'])}:{code}")
        stats["MRCONSO.RRF:kept"] += 1
    if not best:
        detail = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(stats.items())
                           if k.startswith("MRCONSO.RRF:")) or "no rows"
        check_not_empty(0, str(conso), f"MRCONSO.RRF: {detail}", allow_empty=allow_empty)
    # MRSTY
    stys: dict[str, set[SemanticType]] = {}
    sty_path = meta_dir / "MRSTY.RRF"
    if sty_path.is_file():
        for row in iter_rrf(sty_path, layout["MRSTY.RRF"], on_error=on_error, stats=stats, progress=progress):
            if row["CUI"] in best:
                stys.setdefault(row["CUI"], set()).add(SemanticType(row["TUI"], row["STY"], row["STN"]))
    # MRDEF
    defs: dict[str, str] = {}
    def_path = meta_dir / "MRDEF.RRF"
    if def_path.is_file():
        for row in iter_rrf(def_path, layout["MRDEF.RRF"], on_error=on_error, stats=stats, progress=progress):
            cui = row["CUI"]
            if cui not in best or cui in defs:
                continue
            if sabs is not None and row["SAB"].upper() not in sabs:
                continue
            if not include_suppressed and row["SUPPRESS"] in SUPPRESSED:
                continue
            defs[cui] = row["DEF"]
    concepts = [
        Concept(
            cui,
            best[cui][1],
            tuple(names[cui] - {best[cui][1]}),
            tuple(stys.get(cui, ())),
            tuple(xrefs.get(cui, ())),
            defs.get(cui, ""),
        )
        for cui in sorted(best)
    ]
    # MRREL
    rels: list[Relation] = []
    rel_path = meta_dir / "MRREL.RRF"
    keep_types = None if relation_types is None else set(relation_types)
    if relations and rel_path.is_file():
        seen: set[tuple[str, str, str, str]] = set()
        for lineno, row in _rows(rel_path, layout["MRREL.RRF"], on_error, stats, progress):
            c1, c2, rel, rela, sab = row["CUI1"], row["CUI2"], row["REL"], row["RELA"], row["SAB"]
            if _bad_cui(row, "CUI1", rel_path, lineno, on_error, stats) or _bad_cui(
                row, "CUI2", rel_path, lineno, on_error, stats
            ):
                continue
            if sabs is not None and sab.upper() not in sabs:
                stats["MRREL.RRF:filtered_source"] += 1
                continue
            if not include_suppressed and row["SUPPRESS"] in SUPPRESSED:
                stats["MRREL.RRF:filtered_suppressed"] += 1
                continue
            if keep_types is not None and (rela or rel) not in keep_types:
                stats["MRREL.RRF:filtered_type"] += 1
                continue
            if c1 == c2:
                stats["MRREL.RRF:self_loop"] += 1
                continue
            if c1 not in best or c2 not in best:
                stats["MRREL.RRF:dangling"] += 1
                continue
            if rel == "PAR" or rela == "inverse_isa":
                head, name, tail = c1, IS_A, c2
            elif rel == "CHD" or rela == "isa":
                head, name, tail = c2, IS_A, c1
            else:
                head, tail = c2, c1
                name = relation_name(rela) if rela else _REL_NAMES.get(rel, relation_name(rel))
            src = normalise_source(sab)
            key = (head, name, tail, src)
            if key in seen:
                stats["MRREL.RRF:duplicate"] += 1
                continue
            seen.add(key)
            rels.append(Relation(head, name, tail, src))
            stats["MRREL.RRF:kept"] += 1
    # MRSAB
    sab_info: dict[str, dict[str, str]] = {}
    sab_path = meta_dir / "MRSAB.RRF"
    if sab_path.is_file():
        for row in iter_rrf(sab_path, layout["MRSAB.RRF"], on_error=on_error, stats=stats):
            if row.get("CURVER", "Y") == "Y":
                sab_info[row["RSAB"]] = {k: row[k] for k in ("VSAB", "SON", "SVER", "LAT", "SRL") if k in row}
    return RRFResult(concepts, rels, stats, sab_info)
