"""Training: a minimal fitting loop (``fit``) used by the demo and the zero-shot mode."""
