"""Parse and validate 1,000 playbooks: the cost every save, import and generate pays."""

from __future__ import annotations

from pathlib import Path

from playbook_core import catalog
from playbook_core.domain.loading import load_text
from tests.bench import harness

EXAMPLE = Path(__file__).parents[1] / "data" / "playbooks" / "post_purchase_example.yaml"


def corpus(size: int) -> list[str]:
    sources = [catalog.system_yaml(entry.id) for entry in catalog.registry()]
    sources.append(EXAMPLE.read_text())
    # Vary the name so no layer can cache by content.
    return [
        sources[i % len(sources)].replace("name: ", f"name: Copy {i} of ", 1) for i in range(size)
    ]


def bench_parse_and_validate_1000_playbooks():
    texts = corpus(1000)
    for text in texts[:20]:
        load_text(text)  # warm caches the real service also keeps warm
    durations = harness.time_each(load_text, texts)
    harness.report(
        "validation",
        {"parse+validate (1,000 docs)": harness.summarise(durations)},
        notes="load_text on catalog-shaped YAML, 3-5 steps each",
    )
