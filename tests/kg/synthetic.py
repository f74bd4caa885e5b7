"""Tiny synthetic knowledge graphs with planted structure, shared by the kg tests."""

from __future__ import annotations

import random

from graphbrain.kg.model import DISEASE, SIGN_OR_SYMPTOM, Concept, Relation


def planted_kg(n_groups: int = 4, diseases_per_group: int = 8, symptoms_per_group: int = 5, seed: int = 0):
    """Diseases in groups; each disease has every symptom of its group, is_a its group class.

    Any held-out disease -> symptom triple is predictable from the group structure.
    """
    rng = random.Random(seed)
    concepts, relations = [], []
    concepts.append(Concept("G:root", "disease", (), (DISEASE,)))
    for g in range(n_groups):
        gid = f"G:{g}"
        concepts.append(Concept(gid, f"group {g} disease", (), (DISEASE,)))
        relations.append(Relation(gid, "is_a", "G:root", "synthetic"))
        syms = [f"S:{g}.{j}" for j in range(symptoms_per_group)]
        for s in syms:
            concepts.append(Concept(s, f"symptom {g}.{s[-1]}", (), (SIGN_OR_SYMPTOM,)))
        for i in range(diseases_per_group):
            did = f"D:{g}.{i}"
            concepts.append(Concept(did, f"disease {g}.{i}", (), (DISEASE,)))
            relations.append(Relation(did, "is_a", gid, "synthetic"))
            for s in syms:
                relations.append(Relation(did, "has_symptom", s, "synthetic"))
    rng.shuffle(relations)
    return concepts, relations
