"""Authoring: what editors create and change."""
