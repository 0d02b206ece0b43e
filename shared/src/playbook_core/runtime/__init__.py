"""Glue for functions/main.py: bootstrap, boundaries, CloudEvent decoding, the manifest."""
