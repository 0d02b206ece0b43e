"""bootstrap.PROVIDER_USERS names the functions health asks about each provider.

Those functions must be manifest functions that infra mounts the provider's secrets into, or
their reports would say `unconfigured` for a provider that is set up.
"""

import re
from pathlib import Path

from playbook_core.config import Settings
from playbook_core.runtime.bootstrap import PROVIDER_USERS
from playbook_core.runtime.manifest import load_manifest

MANIFEST_MODULE = Path(__file__).parents[2] / "infra" / "modules" / "manifest" / "main.tf"
# The secrets a provider's client needs (Settings environment names, as infra mounts them).
PROVIDER_SECRETS = {
    "mailjet": ("MAILJET_API_KEY", "MAILJET_SECRET_KEY"),
    "blackleaf": ("BLACKLEAF_API_KEY",),
    "harness": ("AGENT_HARNESS_TOKEN",),
    "slack": ("SLACK_ALERT_WEBHOOK_URL",),
}


def secret_consumers() -> dict[str, set[str]]:
    """Secret → functions, from the manifest module's `secret_consumers = { … }` map."""
    text = MANIFEST_MODULE.read_text(encoding="utf-8")
    block = re.search(r"^\s*secret_consumers = \{\n(.*?)^\s*\}", text, re.MULTILINE | re.DOTALL)
    assert block, "no secret_consumers map in the manifest module"
    rows = re.findall(r"^\s*([A-Z_]+)\s*=\s*\[([^\]]*)\]", block.group(1), re.MULTILINE)
    return {secret: set(re.findall(r'"([a-z_]+)"', functions)) for secret, functions in rows}


def test_every_provider_user_is_a_manifest_function():
    functions = {f.name for f in load_manifest().functions}
    assert {f for users in PROVIDER_USERS.values() for f in users} <= functions


def test_every_provider_user_gets_the_providers_secrets_mounted():
    mounted = secret_consumers()
    assert set(PROVIDER_USERS) == set(PROVIDER_SECRETS)
    for provider, users in PROVIDER_USERS.items():
        for secret in PROVIDER_SECRETS[provider]:
            assert secret in Settings.model_fields[secret.lower()].validation_alias.choices
            assert set(users) <= mounted[secret], (provider, secret)
