"""Playbooks backend library: pure domain, ports, use cases, adapters and runtime glue."""

from playbook_core.domain.errors import Issue, PlaybookInvalid, PlaybooksError
from playbook_core.domain.loading import Validated, dump_yaml, load_data, load_text
from playbook_core.domain.playbook import PlaybookDefinition

__all__ = [
    "Issue",
    "PlaybookDefinition",
    "PlaybookInvalid",
    "PlaybooksError",
    "Validated",
    "dump_yaml",
    "load_data",
    "load_text",
]
