"""The shipped registry and templates, read from package data through the user YAML validator."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from playbook_core.domain.loading import Validated, load_text
from playbook_core.domain.tiers import RegistryEntry, TemplateEntry


def _text(*parts: str) -> str:
    return resources.files(__name__).joinpath(*parts).read_text(encoding="utf-8")


@cache
def registry() -> tuple[RegistryEntry, ...]:
    return tuple(
        RegistryEntry.model_validate(item) for item in yaml.safe_load(_text("registry.yaml"))
    )


@cache
def templates() -> tuple[TemplateEntry, ...]:
    return tuple(
        TemplateEntry.model_validate(item) for item in yaml.safe_load(_text("templates.yaml"))
    )


@cache
def system_playbook(registry_id: str) -> Validated:
    if registry_id not in {entry.id for entry in registry()}:
        raise KeyError(registry_id)
    return load_text(_text("system", f"{registry_id}.yaml"))


@cache
def template(template_id: str) -> Validated:
    if template_id not in {entry.id for entry in templates()}:
        raise KeyError(template_id)
    return load_text(_text("templates", f"{template_id}.yaml"))


def template_entry(template_id: str) -> TemplateEntry:
    return next(entry for entry in templates() if entry.id == template_id)


def system_yaml(registry_id: str) -> str:
    return _text("system", f"{registry_id}.yaml")
