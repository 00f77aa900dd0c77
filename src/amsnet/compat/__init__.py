"""Compatibility with the official AMSNet and AP-BSN checkpoints (key mapping only)."""
