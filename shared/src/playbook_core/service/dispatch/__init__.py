"""Dispatch: one published event → one execution per matching playbook."""
