"""Hydra entry points: ``graphformer-train`` and ``graphformer-eval``."""
