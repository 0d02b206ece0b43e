"""Ingress: everything that becomes an event."""
