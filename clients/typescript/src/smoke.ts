// A dashboard's day against a running stack, through the generated client only. Prints one JSON
// line of what it saw; the e2e test (tests/e2e/test_typescript_client.py) checks it.
// Env: PLAYBOOKS_API_URL (…/playbooks_api), PLAYBOOKS_ID_TOKEN, PLAYBOOKS_ORG_ID.
import { createPlaybooksClient, type Playbook, type Problem } from "./index.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function fail(step: string, error: Problem | undefined, status: number): never {
  throw new Error(`${step}: ${status} ${error?.type ?? ""} ${error?.detail ?? ""}`);
}

const TERMINAL = new Set(["completed", "failed", "cancelled", "rejected", "expired"]);
const YAML = `name: TypeScript client smoke
agent: craig
category: ops
triggers:
  - type: manual
steps:
  - id: tell
    action: notify
    params:
      channel: dashboard
      to: "role:admin"
      title: Hello from the typed client
      message: The generated client ran a playbook.
`;

async function main(): Promise<void> {
  const orgId = required("PLAYBOOKS_ORG_ID");
  const token = required("PLAYBOOKS_ID_TOKEN");
  const api = createPlaybooksClient({ baseUrl: required("PLAYBOOKS_API_URL"), idToken: () => token });
  const org = { orgId };

  const listed = await api.GET("/v1/orgs/{orgId}/playbooks", {
    params: { path: org, query: { view: "all", pageSize: "5" } },
  });
  if (!listed.data) fail("list", listed.error, listed.response.status);

  const created = await api.POST("/v1/orgs/{orgId}/playbooks", {
    params: { path: org },
    body: { yaml: YAML },
  });
  if (!created.data) fail("create", created.error, created.response.status);
  const playbookId = created.data.id;
  const one = { orgId, playbookId };

  const loaded = await api.GET("/v1/orgs/{orgId}/playbooks/{playbookId}", { params: { path: one } });
  if (!loaded.data) fail("get", loaded.error, loaded.response.status);
  const etag = loaded.response.headers.get("ETag") ?? "";
  const changed: Playbook = { ...loaded.data, description: "Saved back whole by the client" };
  const saved = await api.PUT("/v1/orgs/{orgId}/playbooks/{playbookId}", {
    params: { path: one, header: { "If-Match": etag } },
    body: changed,
  });
  if (!saved.data) fail("put", saved.error, saved.response.status);
  const stale = await api.PUT("/v1/orgs/{orgId}/playbooks/{playbookId}", {
    params: { path: one, header: { "If-Match": etag } },
    body: changed,
  });

  const toggled = await api.POST("/v1/orgs/{orgId}/playbooks/{playbookId}:toggle", {
    params: { path: one },
    body: { enabled: true },
  });
  if (!toggled.data) fail("toggle", toggled.error, toggled.response.status);

  const started = await api.POST("/v1/orgs/{orgId}/playbooks/{playbookId}:run", {
    params: { path: one, header: { "Idempotency-Key": `smoke-${playbookId}` } },
    body: { input: { reason: "typed client" } },
  });
  if (!started.data) fail("run", started.error, started.response.status);
  const executionId = started.data.executionId;

  let execution = (
    await api.GET("/v1/orgs/{orgId}/executions/{executionId}", {
      params: { path: { orgId, executionId } },
    })
  ).data;
  for (let i = 0; i < 300 && !(execution && TERMINAL.has(execution.status)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    execution = (
      await api.GET("/v1/orgs/{orgId}/executions/{executionId}", {
        params: { path: { orgId, executionId } },
      })
    ).data;
  }

  const source = await api.POST("/v1/orgs/{orgId}/webhook-sources", {
    params: { path: org },
    body: { platform: "shopify", shopDomain: "ts-client.myshopify.com", secret: "ts-client-secret-1" },
  });
  if (!source.data) fail("webhook source", source.error, source.response.status);

  const analytics = await api.GET("/v1/orgs/{orgId}/analytics/playbooks", { params: { path: org } });
  if (!analytics.data) fail("analytics", analytics.error, analytics.response.status);

  const summary = {
    listed: listed.data.playbooks.length,
    created: { id: playbookId, status: created.data.status, version: created.data.version },
    saved: { version: saved.data.version, description: saved.data.description },
    staleSave: { status: stale.response.status, type: stale.error?.type ?? null },
    toggled: toggled.data.status,
    execution: {
      id: executionId,
      status: execution?.status ?? null,
      steps: execution?.steps?.map((step) => `${step.stepId}:${step.status}`) ?? [],
    },
    source: { id: source.data.id, hasSecret: source.data.hasSecret, keys: Object.keys(source.data).sort() },
    analytics: { from: analytics.data.from, executions: analytics.data.totals.executions },
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
