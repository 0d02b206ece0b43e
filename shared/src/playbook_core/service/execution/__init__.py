"""Execution: running a playbook one step per task."""
