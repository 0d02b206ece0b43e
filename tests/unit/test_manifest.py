import ast
from pathlib import Path

import functions_framework
import pytest
from pydantic import ValidationError

from playbook_core.runtime.manifest import Manifest, PubsubTrigger, load_manifest

ROOT = Path(__file__).parents[2]
MAIN = ROOT / "functions" / "main.py"


def registered_functions() -> set[str]:
    tree = ast.parse(MAIN.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Attribute) and decorator.attr in (
                    "http",
                    "cloud_event",
                ):
                    names.add(node.name)
    return names


def test_every_registered_function_has_a_manifest_entry_and_back():
    manifest = load_manifest()
    assert {f.name for f in manifest.functions} == registered_functions()


@pytest.mark.parametrize("function", load_manifest().functions, ids=lambda f: f.name)
def test_every_manifest_entry_builds_with_functions_framework(function):
    app = functions_framework.create_app(function.name, str(MAIN), function.signature)
    assert app is not None


def by_name(manifest, name):
    return next(f for f in manifest.functions if f.name == name)


def test_dead_letters_are_pushed_to_their_recorder_without_a_dead_letter_topic_of_their_own():
    manifest = load_manifest()
    [events] = manifest.topics
    dispatch = by_name(manifest, "on_event_published").trigger
    recorder = by_name(manifest, "on_event_dead_lettered").trigger
    assert isinstance(dispatch, PubsubTrigger)
    assert isinstance(recorder, PubsubTrigger)
    assert recorder.topic == events.dead_letter
    assert manifest.delivery(dispatch).dead_letter == events.dead_letter
    assert manifest.delivery(dispatch).max_delivery_attempts == events.max_delivery_attempts
    # Its own dead-letter topic would be the topic it reads: it would feed itself.
    assert manifest.delivery(recorder).dead_letter is None


def test_a_pubsub_trigger_on_an_undeclared_topic_is_refused():
    raw = load_manifest().model_dump(by_alias=True)
    by_name_raw = {f["name"]: f for f in raw["functions"]}
    by_name_raw["on_event_dead_lettered"]["trigger"]["topic"] = "playbook-events-deadd"
    with pytest.raises(ValidationError, match="undeclared topic"):
        Manifest.model_validate(raw)


def test_a_sharded_queue_is_one_queue_per_shard_with_its_limits():
    manifest = load_manifest()
    steps = manifest.steps_queue()
    configs = [c for c in manifest.queue_configs() if c.name in steps.shard_names()]
    assert [c.name for c in configs] == [steps.name] + [
        f"{steps.name}-{i}" for i in range(1, steps.shards)
    ]
    assert steps.rate_limits is not None
    limit = steps.rate_limits.max_concurrent_dispatches
    assert {(c.max_attempts, c.max_concurrent_dispatches) for c in configs} == {
        (steps.retry.max_attempts, limit)
    }


@pytest.mark.parametrize(
    "queue",
    [
        {"shards": 0},
        {"shards": 33},
        {"rateLimits": {"maxConcurrentDispatches": 0}},
        {"rateLimits": {"maxDispatchesPerSecond": 5}},
    ],
)
def test_a_queue_with_impossible_shards_or_limits_is_refused(queue):
    raw = load_manifest().model_dump(by_alias=True, exclude_defaults=True)
    raw["queues"][0].update(queue)
    with pytest.raises(ValidationError):
        Manifest.model_validate(raw)
