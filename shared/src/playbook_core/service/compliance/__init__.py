"""Compliance: the guard (docs/compliance.md); consent, STOP and unsubscribe (docs/consent.md)."""
