"""List pages through the gateway against the official Firestore emulator (domain.md §12 P1).

Orgs of 50, 1,000 and 10,000 playbooks; p50/p95 of one 50-item page (the first page, every page
reached through nextPageToken, and a search page), and Firestore reads per page counted through
the store port in the serving process. Target: p95 < 300 ms at 10,000, reads per page independent
of org size. The emulator needs no composite indexes; production does (infra/firestore.indexes).

Benchmarks report; they never assert on time (architecture.md §6).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from werkzeug.serving import make_server

from emulators import gateway, official
from playbook_core import catalog
from playbook_core.adapters.clock import SystemClock
from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.adapters.firestore import FirestoreStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.config import load_settings
from playbook_core.domain.collections import PLAYBOOKS, SUMMARIES
from playbook_core.domain.documents import new_playbook, query_tokens
from playbook_core.domain.loading import load_text
from playbook_core.runtime import bootstrap
from tests.bench import harness

EXAMPLE = Path(__file__).parents[1] / "data" / "playbooks" / "post_purchase_example.yaml"
SIZES = (50, 1_000, 10_000)
PAGE = 50
WARM_UP = 5
FIRST = 40  # first-page samples per org
SEARCH = 10  # search-page samples per org (the emulator scans for array-contains-any: slow)
MAX_WALK = 200  # every page of the 10,000 org
BATCH = 500  # Firestore's limit per batched write
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class CountingFirestoreStore(FirestoreStore):
    """Counts the documents each call reads, as Firestore bills them (one per returned document
    of a query, at least one per query; one per id of a batched get), and the time spent in the
    store, so a page's latency splits into Firestore (here: the emulator) and everything else."""

    def __init__(self, project: str) -> None:
        super().__init__(project)
        self.reset()

    def reset(self) -> None:
        self.reads, self.query_s, self.get_s = 0, 0.0, 0.0

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        started = time.perf_counter()
        try:
            return super().get(collection, doc_id)
        finally:
            self.reads += 1
            self.get_s += time.perf_counter() - started

    def get_many(self, collection: str, doc_ids: Any) -> dict[str, dict[str, Any]]:
        started = time.perf_counter()
        try:
            return super().get_many(collection, doc_ids)
        finally:
            self.reads += len(set(doc_ids))
            self.get_s += time.perf_counter() - started

    def query(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        page = super().query(*args, **kwargs)
        self.query_s += time.perf_counter() - started
        self.reads += max(1, len(page.docs))
        return page


def _variants() -> list[dict[str, Any]]:
    """Realistic playbook documents: the 24 registry definitions and the api.md example."""
    texts = [catalog.system_yaml(entry.id) for entry in catalog.registry()]
    texts.append(EXAMPLE.read_text())
    variants = []
    for text in texts:
        definition = load_text(text).definition
        document = new_playbook(
            playbook_id="template", org_id="template", definition=definition, status="draft",
            source={"kind": "user"}, actor="uid_bench", now=NOW,
        )  # fmt: skip
        variants.append(document)
    return variants


def _documents(org_id: str, size: int, variants: list[dict[str, Any]]) -> Iterator[tuple]:
    """(collection, id, data) for the org's playbooks and their summaries.

    22 registry playbooks (isCustom false) as an Empire dispensary has, 1 in 20 archived, the rest
    the org's own; updatedAt one minute apart, so every page boundary falls on distinct values.
    """
    for n in range(size):
        base = variants[n % len(variants)]
        playbook_id = f"pb_{org_id}_{n:05d}"
        name = f"{base['name']} {n}"
        updated = NOW - timedelta(minutes=n)
        archived = n % 20 == 19
        registry = n < 22
        document = {
            **base,
            "id": playbook_id, "orgId": org_id, "name": name,
            "searchTokens": sorted({*base["searchTokens"], *query_tokens(name)}),
            "status": "archived" if archived else ("active" if registry else "draft"),
            "archived": archived, "active": registry and not archived,
            "isCustom": not registry,
            "source": {"kind": "registry"} if registry else {"kind": "user"},
            "createdAt": updated, "updatedAt": updated,
        }  # fmt: skip
        yield PLAYBOOKS, playbook_id, document
        summary = {
            "orgId": org_id, "playbookId": playbook_id,
            "last30": {"executions": n % 40}, "successRate30": 0.9,
            "lastRunAt": updated, "lastRunStatus": "completed", "pendingApprovals": n % 3,
        }  # fmt: skip
        yield SUMMARIES, playbook_id, summary


def _seed(client: Any, org_sizes: dict[str, int]) -> float:
    """Batched writes of 500, four batches in flight; returns seconds taken."""
    variants = _variants()
    writes = [w for org, size in org_sizes.items() for w in _documents(org, size, variants)]
    chunks = [writes[i : i + BATCH] for i in range(0, len(writes), BATCH)]

    def commit(chunk: list[tuple]) -> None:
        batch = client.batch()
        for collection, doc_id, data in chunk:
            batch.set(client.collection(collection).document(doc_id), data)
        batch.commit()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(commit, chunks))
    return time.perf_counter() - started


def _serve(app: Any) -> tuple[str, Any]:
    """The local gateway (every manifest function at /<name>/) in this process, on a free port."""
    bootstrap.use(app)
    server = make_server("127.0.0.1", 0, gateway.create_gateway(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.port}/playbooks_api", server


class Samples:
    def __init__(self) -> None:
        self.durations: list[float] = []
        self.reads: list[int] = []
        self.query_s: list[float] = []
        self.get_s: list[float] = []

    def extend(self, other: Samples, skip: int = 0) -> None:
        self.durations += other.durations[skip:]
        self.reads += other.reads[skip:]
        self.query_s += other.query_s[skip:]
        self.get_s += other.get_s[skip:]

    def row(self) -> dict[str, float]:
        figures: dict[str, float] = harness.summarise(self.durations)
        figures["reads_per_page_mean"] = statistics.fmean(self.reads)
        figures["reads_per_page_max"] = float(max(self.reads))
        figures["query_ms_p50"] = statistics.median(self.query_s) * 1000
        figures["get_many_ms_p50"] = statistics.median(self.get_s) * 1000
        store = [q + g for q, g in zip(self.query_s, self.get_s, strict=True)]
        figures["store_ms_p50"] = statistics.median(store) * 1000
        return figures


def _pages(
    http: httpx.Client, store: CountingFirestoreStore, path: str, requests: list[dict[str, Any]]
) -> tuple[Samples, str | None]:
    """Time each request; returns the samples and the last page's nextPageToken."""
    samples, token = Samples(), None
    for params in requests:
        store.reset()
        started = time.perf_counter()
        response = http.get(path, params=params)
        samples.durations.append(time.perf_counter() - started)
        response.raise_for_status()
        body = response.json()
        assert len(body["playbooks"]) <= PAGE
        samples.reads.append(store.reads)
        samples.query_s.append(store.query_s)
        samples.get_s.append(store.get_s)
        token = body["nextPageToken"]
    return samples, token


def _walk(http: httpx.Client, store: CountingFirestoreStore, path: str) -> tuple[Samples, int]:
    """Every page after the first, following nextPageToken; returns them and the page count."""
    walked = Samples()
    _, token = _pages(http, store, path, [{"pageSize": PAGE}])
    pages = 1
    while token is not None and pages < MAX_WALK:
        sample, token = _pages(http, store, path, [{"pageSize": PAGE, "pageToken": token}])
        walked.extend(sample)
        pages += 1
    return walked, pages


def bench_list_pages_through_the_gateway(firestore_emulator: official.Emulator) -> None:
    os.environ.update(
        {
            "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
            "GOOGLE_CLOUD_PROJECT": official.PROJECT,
            "PLAYBOOKS_BACKEND": "emulators",
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",  # unsigned local tokens
            "CRON_SECRET": "bench-cron-secret",
        }
    )
    os.environ.pop("K_SERVICE", None)
    store = CountingFirestoreStore(official.PROJECT)
    orgs = {f"org_bench_{size}": size for size in SIZES}
    seeded_in = _seed(store.client(), orgs)
    app = bootstrap.App(load_settings(), store, InProcessBus(), InProcessTaskQueue(), SystemClock())
    base, server = _serve(app)
    rows: dict[str, dict[str, float]] = {}
    try:
        for org_id, size in orgs.items():
            claims = local_claims(official.PROJECT, "uid_bench", "brand_admin", [org_id])
            headers = {"Authorization": f"Bearer {unsigned_token(claims)}"}
            path = f"/v1/orgs/{org_id}/playbooks"
            with httpx.Client(base_url=base, headers=headers, timeout=30.0) as http:
                first, _ = _pages(http, store, path, [{"pageSize": PAGE}] * (WARM_UP + FIRST))
                warm = Samples()
                warm.extend(first, skip=WARM_UP)
                rows[f"{size:>6,} first page"] = warm.row()
                walked, pages = _walk(http, store, path)
                if walked.durations:
                    rows[f"{size:>6,} pages 2..{pages}"] = walked.row()
                search, _ = _pages(http, store, path, [{"pageSize": PAGE, "q": "weekly"}] * SEARCH)
                rows[f"{size:>6,} q=weekly"] = search.row()
    finally:
        server.shutdown()
        bootstrap.use(None)
    notes = (
        f"GET playbooks_api …/playbooks?pageSize={PAGE} via emulators.gateway (in process, "
        f"werkzeug) on the Firestore emulator; brand view; seeded "
        f"{sum(SIZES):,} playbooks + summaries in {seeded_in:.1f} s; target p95 < 300 ms at "
        "10,000 and reads/page independent of org size"
    )
    harness.report("list_pages", rows, notes=notes)
    harness.summary(search_p95_ms_10000=rows[f"{SIZES[-1]:>6,} q=weekly"]["p95_ms"])
    columns = ("reads/page", "max", "query p50", "get_many p50", "rest p50")
    print(f"{'case':<28}" + "".join(f"{c:>14}" for c in columns) + "   (ms)")
    for case, f in rows.items():
        rest = f["p50_ms"] - f["store_ms_p50"]
        cells = (f["reads_per_page_mean"], f["reads_per_page_max"], f["query_ms_p50"])
        cells += (f["get_many_ms_p50"], rest)
        print(f"{case:<28}" + "".join(f"{cell:>14.1f}" for cell in cells))
