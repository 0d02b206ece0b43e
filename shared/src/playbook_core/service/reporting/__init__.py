"""Reporting: what the dashboard's numbers are made of."""
