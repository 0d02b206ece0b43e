from pathlib import Path

import pytest

from playbook_core.domain.loading import load_text

DRAFTS = sorted((Path(__file__).parents[2] / "emulators" / "drafts").glob("*.yaml"))


def test_there_is_a_draft_per_keyword_family():
    assert {p.stem for p in DRAFTS} >= {
        "low_stock",
        "welcome",
        "win_back",
        "weekly_report",
        "competitor_price",
    }


@pytest.mark.parametrize("path", DRAFTS, ids=lambda p: p.stem)
def test_every_agent_harness_draft_passes_the_real_validator(path):
    result = load_text(path.read_text())
    assert result.warnings == []
    assert result.definition.steps
