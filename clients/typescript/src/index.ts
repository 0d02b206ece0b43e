// The Playbooks dashboard API client: openapi-fetch over the types generated from our OpenAPI
// document (src/schema.d.ts, `npm run generate`), so a call that does not fit the contract does
// not compile.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths };
export type Playbook = components["schemas"]["Playbook"];
export type Problem = components["schemas"]["Problem"];

export interface ClientOptions {
  /** The API's base URL: `<gateway>/playbooks_api` locally (read it from .local/stack.json). */
  baseUrl: string;
  /** A Firebase ID token for each request (the dashboard: `user.getIdToken()`). */
  idToken: () => Promise<string> | string;
  fetch?: typeof fetch;
}

// JSON answers and problem+json errors; the YAML and Mermaid alternatives are fetched as text.
type Json = "application/json" | "application/problem+json";

export function createPlaybooksClient(options: ClientOptions) {
  const client = createClient<paths, Json>({
    baseUrl: options.baseUrl,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const auth: Middleware = {
    async onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${await options.idToken()}`);
      return request;
    },
  };
  client.use(auth);
  return client;
}

export type PlaybooksClient = ReturnType<typeof createPlaybooksClient>;
