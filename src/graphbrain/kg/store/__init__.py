"""On-disk knowledge-graph store for a full UMLS release on one workstation.

:func:`build_store` streams RRF (pyarrow, vectorised filters, every growing table spilled
to bucket files and finished one bucket at a time, so peak memory does not grow with the
release) into a folder of memory-mapped arrays and Arrow tables; :class:`StoreBackend` (through
``KnowledgeGraph.open(folder)``) answers look-ups, neighbours, paths and diagnosis from it
without loading it. CLI: ``graphbrain kg build --source rrf --store disk --input META --out DIR``.
"""

from graphbrain.kg.store.backend import StoreBackend
from graphbrain.kg.store.build import build_store

__all__ = ["StoreBackend", "build_store"]
