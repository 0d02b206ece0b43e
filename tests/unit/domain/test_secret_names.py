"""Secret names are derived from their owner, and a reference resolves only for that owner."""

from hypothesis import given
from hypothesis import strategies as st

from playbook_core.domain.secret_names import (
    names_secret,
    org_slack_reference,
    secret_name_of,
    slack_secret_name,
    webhook_secret_name,
)

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_.-", min_size=1, max_size=64)
SECRET_ID = r"^[A-Za-z0-9_-]{1,255}$"


def references_to(name):
    return [
        f"local:{name}",
        f"local:{name}@0123abcd",
        f"projects/demo-playbooks/secrets/{name}",
        f"projects/123456/secrets/{name}/versions/7",
        f"projects/p/secrets/{name}/versions/latest",
    ]


@given(ids, ids, ids)
def test_names_are_valid_secret_ids_and_never_shared_between_orgs(org_a, org_b, source):
    for name in (slack_secret_name(org_a), webhook_secret_name(org_a, source)):
        assert secret_name_of(f"local:{name}") == name
    if org_a != org_b:
        assert slack_secret_name(org_a) != slack_secret_name(org_b)
        assert webhook_secret_name(org_a, source) != webhook_secret_name(org_b, source)
        for reference in references_to(slack_secret_name(org_b)):
            assert not names_secret(reference, slack_secret_name(org_a))
            assert org_slack_reference(org_a, {"slackWebhookSecretRef": reference}) is None


@given(ids)
def test_every_reference_form_to_the_orgs_own_secret_resolves(org):
    for reference in references_to(slack_secret_name(org)):
        assert org_slack_reference(org, {"slackWebhookSecretRef": reference}) == reference


def test_traversal_and_look_alikes_are_refused():
    own = slack_secret_name("org_a")
    for reference in (
        f"local:{own}/../x", f"local:{own}.", f"projects/p/secrets/{own}/versions/1/x",
        f"projects/p/secrets/{own}x", f" local:{own}", f"local:{own}\n", None, 7,
    ):  # fmt: skip
        assert not names_secret(reference, own), reference
