"""Multimodal fusion: imaging-encoder embeddings, phenotypes and knowledge-graph features
with the connectome, robust to missing modalities. Above ``models``/``training``/``explain``
and ``kg`` in the layering; the knowledge graph keeps standing alone.
"""
