"""Paths over a knowledge graph: the :class:`Path` record and backend-agnostic algorithms.

The algorithms take an adjacency function ``adj(node) -> [(neighbour, relation), ...]``
(already filtered by relation types and direction, in a deterministic order), so every
backend answers path queries with the same algorithm over its own storage:

* :func:`shortest_path` — breadth-first search (unweighted, fewest hops), ties broken by
  the adjacency order (relation type, then neighbour id).
* :func:`k_shortest_paths` — Yen's algorithm for the k shortest *simple* paths.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from graphbrain.kg.model import Relation

Adjacency = Callable[[str], list[tuple[str, Relation]]]


@dataclass(frozen=True, slots=True)
class Path:
    """A walk ``nodes[0] -steps[0]- nodes[1] - ... - nodes[-1]``.

    ``steps[i]`` is the relation between ``nodes[i]`` and ``nodes[i + 1]`` in its stored
    orientation: when ``steps[i].head == nodes[i + 1]`` the edge was walked backwards.
    """

    nodes: tuple[str, ...]
    steps: tuple[Relation, ...]

    def __post_init__(self) -> None:
        if len(self.nodes) != len(self.steps) + 1:
            raise ValueError("a path needs exactly one more node than steps")

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def relations(self) -> tuple[str, ...]:
        return tuple(s.relation for s in self.steps)

    def describe(self, names: Mapping[str, str] | Callable[[str], str] | None = None) -> str:
        """Human-readable form: ``epilepsy --has_symptom--> seizure <--is_a-- focal seizure``."""
        if names is None:
            def name(x: str) -> str:
                return x
        elif callable(names):
            name = names
        else:
            def name(x: str) -> str:
                return names.get(x, x)  # type: ignore[union-attr]
        parts = [name(self.nodes[0])]
        for i, step in enumerate(self.steps):
            forward = step.head == self.nodes[i] and step.tail == self.nodes[i + 1]
            parts.append(f"--{step.relation}-->" if forward else f"<--{step.relation}--")
            parts.append(name(self.nodes[i + 1]))
        return " ".join(parts)

    def to_dict(self, names: Mapping[str, str] | Callable[[str], str] | None = None) -> dict:
        return {
            "nodes": list(self.nodes),
            "relations": [
                {"head": s.head, "relation": s.relation, "tail": s.tail, "source": s.source}
                for s in self.steps
            ],
            "text": self.describe(names),
        }


def _edge_id(rel: Relation) -> tuple[str, str, str]:
    return rel.key


def shortest_path(
    adj: Adjacency,
    source: str,
    target: str,
    *,
    max_hops: int | None = None,
    blocked_nodes: frozenset[str] | set[str] = frozenset(),
    blocked_edges: frozenset[tuple[str, str, str]] | set[tuple[str, str, str]] = frozenset(),
) -> Path | None:
    """Fewest-hop path from ``source`` to ``target`` or ``None`` when there is none."""
    if source == target:
        return Path((source,), ())
    if source in blocked_nodes:
        return None
    parent: dict[str, tuple[str, Relation]] = {}
    seen = {source}
    frontier: deque[tuple[str, int]] = deque([(source, 0)])
    while frontier:
        node, depth = frontier.popleft()
        if max_hops is not None and depth >= max_hops:
            continue
        for nbr, rel in adj(node):
            if nbr in seen or nbr in blocked_nodes or _edge_id(rel) in blocked_edges:
                continue
            seen.add(nbr)
            parent[nbr] = (node, rel)
            if nbr == target:
                return _unwind(parent, source, target)
            frontier.append((nbr, depth + 1))
    return None


def _unwind(parent: dict[str, tuple[str, Relation]], source: str, target: str) -> Path:
    nodes = [target]
    steps: list[Relation] = []
    cur = target
    while cur != source:
        prev, rel = parent[cur]
        steps.append(rel)
        nodes.append(prev)
        cur = prev
    return Path(tuple(reversed(nodes)), tuple(reversed(steps)))


def k_shortest_paths(
    adj: Adjacency, source: str, target: str, k: int, *, max_hops: int | None = None
) -> list[Path]:
    """The ``k`` shortest simple paths (Yen 1971), shortest first, deterministic order."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    first = shortest_path(adj, source, target, max_hops=max_hops)
    if first is None:
        return []
    found: list[Path] = [first]
    seen_keys = {_path_key(first)}
    candidates: list[tuple[int, tuple, Path]] = []
    while len(found) < k:
        prev = found[-1]
        for i in range(len(prev.nodes) - 1):
            spur = prev.nodes[i]
            root_nodes = prev.nodes[: i + 1]
            root_steps = prev.steps[:i]
            blocked_edges = {
                _edge_id(p.steps[i]) for p in found if len(p.steps) > i and p.nodes[: i + 1] == root_nodes
            }
            blocked_nodes = set(root_nodes[:-1])
            remaining = None if max_hops is None else max_hops - i
            if remaining is not None and remaining <= 0:
                continue
            spur_path = shortest_path(
                adj,
                spur,
                target,
                max_hops=remaining,
                blocked_nodes=blocked_nodes,
                blocked_edges=blocked_edges,
            )
            if spur_path is None:
                continue
            total = Path(root_nodes[:-1] + spur_path.nodes, root_steps + spur_path.steps)
            key = _path_key(total)
            if key in seen_keys:
                continue
            seen_keys.add(key)
            heapq.heappush(candidates, (len(total), key, total))
        if not candidates:
            break
        found.append(heapq.heappop(candidates)[2])
    return found


def _path_key(p: Path) -> tuple:
    return (p.nodes, tuple(_edge_id(s) for s in p.steps))
