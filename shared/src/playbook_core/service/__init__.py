"""Use cases: load, call the domain, persist, enqueue; only through ports."""
