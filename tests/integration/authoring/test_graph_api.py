"""The org's dependency graph through playbooks_api (api.md §5, domain.md §10.2)."""

CRON_SECRET = "test-cron-secret"  # the api fixture configures this value
SYSTEM = {"X-Cron-Secret": CRON_SECRET}
GRAPH = "/v1/orgs/org_a/graph"
CART_EMAIL = {
    "name": 'Cart "rescue"',
    "agent": "craig",
    "triggers": [{"type": "event", "eventName": "checkout.started"}],
    "steps": [
        {
            "action": "send_email",
            "params": {"to": "{{ customer.email }}", "subject": "Still there?", "body": "Hi"},
        }
    ],
}


def activate_empire(api):
    response = api.client.post(
        "/v1/orgs/org_a:activateTier", json={"tier": "empire"}, headers=SYSTEM
    )
    assert response.status_code == 200


def create_active(api, definition):
    created = api.as_().post("/v1/orgs/org_a/playbooks", json=definition).get_json()
    url = f"/v1/orgs/org_a/playbooks/{created['id']}"
    assert api.as_().post(f"{url}:toggle", json={"enabled": True}).status_code == 200
    return created["id"], url


def test_registry_playbooks_graph_as_json_and_mermaid(api):
    activate_empire(api)
    response = api.as_(role="dispensary").get(GRAPH)
    assert response.status_code == 200
    graph = response.get_json()
    playbooks = [n for n in graph["nodes"] if n["kind"] == "playbook"]
    assert len(playbooks) == 22
    assert {n["status"] for n in playbooks} == {"active"}
    assert [n["id"] for n in graph["nodes"]] == sorted(n["id"] for n in graph["nodes"])
    assert {
        "from": "event:order.completed",
        "to": "playbook:org_a_post-purchase-thank-you",
        "kind": "listens",
        "label": "via: order.completed",
    } in graph["edges"]
    assert {
        "from": "event:order.post_purchase",
        "to": "playbook:org_a_post-purchase-thank-you",
        "kind": "listens",
    } in graph["edges"]
    assert graph["warnings"] == []
    assert api.as_().get(GRAPH).get_json() == graph  # deterministic

    mermaid = api.as_().get(GRAPH + "?format=mermaid")
    assert mermaid.status_code == 200
    assert mermaid.mimetype == "text/plain"
    lines = mermaid.get_data(as_text=True).splitlines()
    assert lines[0] == "flowchart LR"
    assert len(lines) == 1 + len(graph["edges"])
    assert '  E6["customer.signup"] --> P20["Welcome Sequence"]' in lines


def test_no_producer_until_a_shopify_store_is_registered(api):
    pid, _ = create_active(api, CART_EMAIL)
    graph = api.as_().get(GRAPH).get_json()
    assert {"code": "no_producer", "nodes": ["event:checkout.started"]} in graph["warnings"]
    registered = api.as_().post(
        "/v1/orgs/org_a/webhook-sources",
        json={"platform": "shopify", "shopDomain": "shop.myshopify.com"},
    )
    assert registered.status_code == 201
    second, _ = create_active(api, {**CART_EMAIL, "name": "Second cart email"})
    graph = api.as_().get(GRAPH).get_json()
    overlap = ["event:checkout.started", *sorted([f"playbook:{pid}", f"playbook:{second}"])]
    assert graph["warnings"] == [{"code": "overlapping_customer_sends", "nodes": overlap}]
    mermaid = api.as_().get(GRAPH + "?format=mermaid").get_data(as_text=True)
    assert '["Cart #quot;rescue#quot;"]' in mermaid


def test_inactive_playbooks_only_on_request_and_archived_never(api):
    paused_id, paused = create_active(api, CART_EMAIL)
    archived_id, archived = create_active(api, {**CART_EMAIL, "name": "Gone"})
    assert api.as_().post(f"{paused}:toggle", json={"enabled": False}).status_code == 200
    assert api.as_().delete(f"{archived}?confirm=true").status_code == 204
    assert api.as_().get(GRAPH).get_json() == {"nodes": [], "edges": [], "warnings": []}
    graph = api.as_().get(GRAPH + "?includeInactive=true").get_json()
    assert [n["id"] for n in graph["nodes"]] == ["event:checkout.started", f"playbook:{paused_id}"]
    assert graph["nodes"][1]["status"] == "paused"
    assert f"playbook:{archived_id}" not in {n["id"] for n in graph["nodes"]}
    mermaid = api.as_().get(GRAPH + "?format=mermaid&includeInactive=true").get_data(as_text=True)
    assert ":::inactive" in mermaid


def test_tenancy_and_bad_parameters(api):
    activate_empire(api)
    assert api.as_(orgs=("org_b",)).get(GRAPH).status_code == 403
    assert api.as_(orgs=("org_b",)).get(GRAPH + "?format=mermaid").status_code == 403
    assert api.as_().get(GRAPH + "?format=dot").status_code == 400
    assert api.as_().get(GRAPH + "?includeInactive=yes").status_code == 400
    assert api.client.get(GRAPH).status_code == 401
    assert api.as_(orgs=("org_b",)).get("/v1/orgs/org_b/graph").get_json()["nodes"] == []
