"""Knowledge-graph features for ROIs: atlas labels -> anatomy concepts -> KG embeddings.

1. :func:`read_label_table` reads an atlas label table (``value,name`` CSV/TSV such as the
   PCP ``ho_labels.csv`` / ``aal_labels.csv``, FSL-style XML is not needed): ROI names in a
   cohort (``"10"`` or ``"#10"``) become label texts (``"Left Thalamus"``).
2. :func:`map_rois_to_kg` maps each label text to an anatomy concept of a knowledge graph:
   ``exact`` (the cleaned label is a concept name or synonym), ``synonym`` (a known
   neuroanatomical synonym, e.g. ``Cerebelum`` -> cerebellum), ``region`` (the label names
   a structure the KG only has at a coarser level: ``Left Hippocampus`` -> temporal lobe
   when the KG has no hippocampus, through :data:`REGION_KEYWORDS`) or ``none``. The result
   is a table a user can correct: save it with ``to_csv``, edit ``concept_id``, and pass it
   back with ``mapping=``. :func:`mapping_coverage` reports how much was mapped and how.
3. :func:`roi_kg_embeddings` gives each ROI the KG embedding of its concept (from
   :func:`graphbrain.kg.embeddings.train_kge` or a saved ``EmbeddingResult``): an
   ``(R, D)`` matrix of node features, zeros (and ``present=False``) for unmapped ROIs.

Only anatomy concepts are candidates (semantic types "Body Part, Organ..." / "Body
Location" / concepts that are the tail of a ``located_in`` relation), so "Frontal Pole"
can never map to a disease that happens to share a word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphbrain.errors import DataError

# Structure keywords -> anatomy concept names, from specific to coarse. The first name
# that exists in the KG wins; the chain is what an anatomist would accept as "contains".
REGION_KEYWORDS: dict[str, tuple[str, ...]] = {
    "hippocamp": ("hippocampus", "temporal lobe", "cerebral cortex", "brain"),
    "amygdala": ("amygdala", "temporal lobe", "limbic system", "brain"),
    "parahippocampal": ("parahippocampal gyrus", "temporal lobe", "cerebral cortex", "brain"),
    "temporal": ("temporal lobe", "cerebral cortex", "brain"),
    "heschl": ("transverse temporal gyrus", "temporal lobe", "cerebral cortex", "brain"),
    "planum": ("temporal lobe", "cerebral cortex", "brain"),
    "fusiform": ("fusiform gyrus", "temporal lobe", "cerebral cortex", "brain"),
    "frontal": ("frontal lobe", "cerebral cortex", "brain"),
    "precentral": ("precentral gyrus", "frontal lobe", "cerebral cortex", "brain"),
    "orbit": ("orbitofrontal cortex", "frontal lobe", "cerebral cortex", "brain"),
    "rolandic": ("frontal lobe", "cerebral cortex", "brain"),
    "supp_motor": ("supplementary motor area", "frontal lobe", "cerebral cortex", "brain"),
    "juxtapositional": ("supplementary motor area", "frontal lobe", "cerebral cortex", "brain"),
    "paracentral": ("paracentral lobule", "frontal lobe", "cerebral cortex", "brain"),
    "olfactory": ("olfactory cortex", "cerebral cortex", "brain"),
    "insula": ("insula", "cerebral cortex", "brain"),
    "insular": ("insula", "cerebral cortex", "brain"),
    "cingul": ("cingulate cortex", "cerebral cortex", "brain"),
    "parietal": ("parietal lobe", "cerebral cortex", "brain"),
    "postcentral": ("postcentral gyrus", "parietal lobe", "cerebral cortex", "brain"),
    "supramarginal": ("supramarginal gyrus", "parietal lobe", "cerebral cortex", "brain"),
    "angular": ("angular gyrus", "parietal lobe", "cerebral cortex", "brain"),
    "precuneus": ("precuneus", "parietal lobe", "cerebral cortex", "brain"),
    "precuneous": ("precuneus", "parietal lobe", "cerebral cortex", "brain"),
    "occipital": ("occipital lobe", "cerebral cortex", "brain"),
    "calcarine": ("occipital lobe", "cerebral cortex", "brain"),
    "cuneus": ("cuneus", "occipital lobe", "cerebral cortex", "brain"),
    "cuneal": ("cuneus", "occipital lobe", "cerebral cortex", "brain"),
    "lingual": ("lingual gyrus", "occipital lobe", "cerebral cortex", "brain"),
    "intracalcarine": ("occipital lobe", "cerebral cortex", "brain"),
    "supracalcarine": ("occipital lobe", "cerebral cortex", "brain"),
    "thalamus": ("thalamus", "diencephalon", "cerebrum", "brain"),
    "caudate": ("caudate nucleus", "basal ganglia", "cerebrum", "brain"),
    "putamen": ("putamen", "basal ganglia", "cerebrum", "brain"),
    "pallid": ("globus pallidus", "basal ganglia", "cerebrum", "brain"),
    "accumbens": ("nucleus accumbens", "basal ganglia", "cerebrum", "brain"),
    "cerebell": ("cerebellum", "brain"),
    "cerebelum": ("cerebellum", "brain"),
    "vermis": ("cerebellar vermis", "cerebellum", "brain"),
    "brain-stem": ("brainstem", "brain"),
    "brainstem": ("brainstem", "brain"),
    "stem": ("brainstem", "brain"),
    "gyrus": ("cerebral cortex", "brain"),
    "cortex": ("cerebral cortex", "brain"),
    "pole": ("cerebral cortex", "brain"),
}
_SIDE = re.compile(r"\b(left|right|l|r|lh|rh|bilateral)\b|_(l|r)$", re.IGNORECASE)
ANATOMY_TUIS = {"T023", "T029", "T030", "T024", "T025", "T026", "T022"}


def read_label_table(path: str | Path) -> dict[str, str]:
    """``{label value as str: label name}`` from a ``value,name`` CSV/TSV (``#`` comments skipped)."""
    p = Path(path)
    if not p.exists():
        raise DataError("atlas label table not found", source=str(p), reason="missing_file")
    sep = "\t" if p.suffix in (".tsv", ".txt") else ","
    try:
        df = pd.read_csv(p, sep=sep, comment="#", header=None, dtype=str, skipinitialspace=True)
    except Exception as err:
        raise DataError(f"unreadable label table: {err}", source=str(p), reason="unreadable") from err
    if df.shape[1] < 2:
        raise DataError(f"a label table needs two columns (value, name); got {df.shape[1]}", source=str(p), reason="wrong_shape")
    # a header row ("index,name") is allowed: drop rows whose value is not an integer-like token
    df = df[df[0].str.strip().str.fullmatch(r"-?\d+(\.0+)?").fillna(False)]
    return {str(int(float(v))): str(n).strip() for v, n in zip(df[0], df[1])}


def roi_label_texts(roi_names: Sequence[str], table: Mapping[str, str] | None = None) -> list[str]:
    """Label text per ROI: ``table[value]`` for ROI names like ``"10"``/``"#10"``, else the name itself."""
    out = []
    for name in roi_names:
        key = str(name).lstrip("#").strip()
        if table is not None and key in table:
            out.append(table[key])
        elif table is not None and key.split(".")[0] in table:
            out.append(table[key.split(".")[0]])
        else:
            out.append(str(name))
    return out


def _clean(label: str) -> str:
    s = label.replace("_", " ")
    s = _SIDE.sub(" ", s)
    s = re.sub(r"\(.*?\)|[,;].*$", " ", s)  # "Cingulate Gyrus; anterior division" -> "Cingulate Gyrus"
    s = re.sub(r"\b(lobule|division|part|pars|sup|inf|mid|med|ant|post|orb|oper|tri)\b", " ", s, flags=re.IGNORECASE)
    return " ".join(s.casefold().split())


def _anatomy_index(kg: Any) -> dict[str, str]:
    """normalised name/synonym -> concept id, over anatomy concepts only."""
    located = {r.tail for r in kg.relations() if r.relation == "located_in"}
    names: dict[str, str] = {}
    for c in kg.iter_concepts():
        tuis = {st.tui for st in c.semantic_types}
        if c.id in located or tuis & ANATOMY_TUIS:
            for n in (c.name, *c.synonyms):
                names.setdefault(" ".join(n.casefold().split()), c.id)
    return names


def map_rois_to_kg(
    roi_labels: Sequence[str],
    kg: Any,
    *,
    roi_names: Sequence[str] | None = None,
    mapping: str | Path | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per ROI: ``roi``, ``label``, ``concept_id``, ``concept_name``, ``method``, ``confidence``.

    ``mapping`` (a table from a previous call, possibly edited by the user) overrides the
    automatic choice for the ROIs it lists (``method="user"``).
    """
    names = _anatomy_index(kg)
    rois = list(roi_names) if roi_names is not None else list(roi_labels)
    if len(rois) != len(roi_labels):
        raise DataError(f"{len(rois)} ROI names for {len(roi_labels)} labels", reason="wrong_shape")
    user: dict[str, str] = {}
    if mapping is not None:
        m = pd.read_csv(mapping, dtype=str) if not isinstance(mapping, pd.DataFrame) else mapping
        missing_cols = {"roi", "concept_id"} - set(m.columns)
        if missing_cols:
            raise DataError(f"a ROI mapping table needs columns roi, concept_id; missing {sorted(missing_cols)}",
                            source=str(mapping) if not isinstance(mapping, pd.DataFrame) else "mapping", reason="wrong_shape")
        user = {str(r): str(c) for r, c in zip(m["roi"], m["concept_id"]) if isinstance(c, str) and c and c != "nan"}
    rows = []
    for roi, label in zip(rois, roi_labels):
        cid, method, conf = None, "none", 0.0
        if str(roi) in user:
            cid, method, conf = user[str(roi)], "user", 1.0
            if cid not in kg:
                raise DataError(f"ROI {roi!r}: concept {cid!r} from the mapping table is not in the KG", reason="unknown_concept")
        else:
            clean = _clean(label)
            if clean in names:
                cid, method, conf = names[clean], "exact", 1.0
            else:
                low = label.casefold()
                for kw, chain in REGION_KEYWORDS.items():
                    if kw in low or kw in clean:
                        for depth, target in enumerate(chain):
                            if target in names:
                                cid = names[target]
                                method = "synonym" if depth == 0 else "region"
                                conf = round(1.0 / (1 + depth), 3)
                                break
                        if cid is not None:
                            break
        rows.append({"roi": str(roi), "label": label, "concept_id": cid,
                     "concept_name": kg.name(cid) if cid else None, "method": method, "confidence": conf})
    return pd.DataFrame(rows)


def mapping_coverage(mapping: pd.DataFrame) -> dict[str, Any]:
    """How many ROIs map, by method, and to how many distinct concepts."""
    n = len(mapping)
    counts = mapping["method"].value_counts().to_dict()
    mapped = int(mapping["concept_id"].notna().sum())
    return {
        "n_rois": n,
        "mapped": mapped,
        "coverage": mapped / n if n else 0.0,
        "by_method": {k: int(v) for k, v in counts.items()},
        "distinct_concepts": int(mapping["concept_id"].dropna().nunique()),
        "mean_confidence": float(mapping["confidence"].mean()) if n else 0.0,
    }


def roi_kg_embeddings(mapping: pd.DataFrame, embedding: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(features (R, D), present (R,))``: each ROI's concept embedding; zeros when unmapped."""
    ids = mapping["concept_id"].tolist()
    known = set(getattr(embedding, "entity_ids", []) or [])
    present = np.asarray([c is not None and (not known or c in known) for c in ids])
    dim = int(embedding.features([next(c for c, p in zip(ids, present) if p)]).shape[1]) if present.any() else 0
    feats = np.zeros((len(ids), dim), dtype=np.float32)
    if present.any():
        sel = [c for c, p in zip(ids, present) if p]
        feats[present] = np.asarray(embedding.features(sel), dtype=np.float32)
    return feats, present


_EMBED_CACHE: dict[tuple[Any, ...], Any] = {}


def kg_roi_features(
    roi_names: Sequence[str],
    *,
    labels: str | Path | None = None,
    embedding: str | Path | None = None,
    mapping: str | Path | pd.DataFrame | None = None,
    kg: Any = None,
    model: str = "transe",
    dim: int = 16,
    epochs: int = 30,
    seed: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``(features (R, D), mapping table)`` for a cohort's ROIs, ready for ``roi_features=``.

    ``labels``: the atlas label table (``value,name``); without it the ROI names are the
    labels. ``embedding``: a saved :class:`~graphbrain.kg.embeddings.EmbeddingResult`;
    without it one is trained on the KG (default: the shipped graph) and cached in memory
    for this process. No subject data is involved, so nothing here can leak labels.
    """
    from graphbrain.kg import KnowledgeGraph
    from graphbrain.kg.embeddings import EmbeddingResult

    kg = kg if kg is not None else KnowledgeGraph.default()
    texts = roi_label_texts(roi_names, read_label_table(labels) if labels else None)
    table = map_rois_to_kg(texts, kg, roi_names=roi_names, mapping=mapping)
    if embedding is not None:
        emb = EmbeddingResult.load(embedding)
    else:
        key = (id(kg), model, dim, epochs, seed)
        if key not in _EMBED_CACHE:
            from graphbrain.kg.embeddings import TripleSplit, train_kge, triples_from_kg

            ents, rels, t = triples_from_kg(kg)
            # Every triple trains (the features are the goal, not link-prediction scores);
            # a token 8-triple test split keeps train_kge's evaluation step cheap.
            split = TripleSplit(ents, rels, t, t[:8])
            _EMBED_CACHE[key] = train_kge(kg, model, dim=dim, epochs=epochs, seed=seed, split=split, progress=False)
        emb = _EMBED_CACHE[key]
    feats, present = roi_kg_embeddings(table, emb)
    table["has_embedding"] = present
    return feats, table
