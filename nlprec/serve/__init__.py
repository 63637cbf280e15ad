"""The HTTP service: `nlprec serve` (FastAPI app, one adapter per model kind, micro-batching)."""
