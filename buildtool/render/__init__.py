"""Rendering, pure: Dockerfile + context + content hash per node, generated/ outputs (plan.json, bake file, matrices, docs) and their atomic writes."""
