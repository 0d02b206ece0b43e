"""What bounds the local query figures: the official Firestore emulator's cost per query.

The emulator answers a query by building an index table over every document of the collection,
every org's, for that query (`FirestoreEmulatorQueryExecutor.materializeIndexTable`, then a sort:
what `jstack` shows during a search page or a webhook burst). One array element makes one index
entry, so an `array-contains` query costs in proportion to the collection's array elements.
Production Firestore reads an index range instead: cost in proportion to the results.

One org owns 10 documents at every size; other orgs own the rest of the collection. Per
collection size: a get by id, the dispatcher's customer lookup (`orgId ==, email ==`, limit 1)
and the list page's search shape (`orgId ==, <array> array-contains`), on arrays of 5 and of 20
elements. A cost that grows with the collection while the org's share stays at 10 documents
is the emulator's; the list-page and pipeline figures carry it.

A second case keeps the queried collection at the org's 10 documents and grows another one, to
see whether a query also pays for documents elsewhere in the database (the pipeline bench leaves
tens of thousands there: executions, their steps, events, claims, receipts). From an empty
emulator it does not, measurably: the p50 stays within noise from 0 to 20,000.

Benchmarks report; they never assert on time (architecture.md §6).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emulators import official
from playbook_core.adapters.firestore import FirestoreStore
from playbook_core.domain.collections import CUSTOMERS, EXECUTIONS, LISTENERS
from playbook_core.ports import Where
from tests.bench import harness

SIZES = (1_000, 4_000, 16_000)
ELSEWHERE = (0, 5_000, 20_000)  # documents in another collection; the queried one keeps 10
ORG = "org_measured"
OWN = 10  # the measured org's documents, at every size
SAMPLES = {"get": 30, "query": 20, "array": 6}
BATCH = 500


def _document(n: int) -> dict[str, Any]:
    org = ORG if n < OWN else f"org_other_{n % 97}"
    return {
        "orgId": org,
        "email": f"buyer{n}@bench.example",
        "firstName": "Bench",
        "tokens5": [f"t{(n + k) % 50}" for k in range(5)],
        "tokens20": [f"t{(n + k) % 50}" for k in range(20)],
    }


def _grow(client: Any, start: int, end: int, collection: str = CUSTOMERS) -> None:
    def commit(first: int) -> None:
        batch = client.batch()
        for n in range(first, min(first + BATCH, end)):
            batch.set(client.collection(collection).document(f"doc_{n:06d}"), _document(n))
        batch.commit()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(commit, range(start, end, BATCH)))


def _timed(call: Callable[[], Any], samples: int) -> dict[str, float]:
    call()  # warm
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return harness.summarise(durations)


def bench_query_cost_grows_with_the_collection(firestore_emulator: official.Emulator) -> None:
    os.environ["FIRESTORE_EMULATOR_HOST"] = firestore_emulator.host
    store = FirestoreStore(official.PROJECT)
    mine = Where("orgId", "==", ORG)
    cases: dict[str, tuple[Callable[[], Any], int]] = {
        "get by id": (lambda: store.get(CUSTOMERS, "doc_000003"), SAMPLES["get"]),
        "orgId, email ==": (
            lambda: store.query(CUSTOMERS, [mine, Where("email", "==", "buyer3@bench.example")], limit=1),
            SAMPLES["query"],
        ),
        "array-contains, 5/doc": (
            lambda: store.query(CUSTOMERS, [mine, Where("tokens5", "array-contains", "t5")], limit=10),
            SAMPLES["array"],
        ),
        "array-contains, 20/doc": (
            lambda: store.query(CUSTOMERS, [mine, Where("tokens20", "array-contains", "t5")], limit=10),
            SAMPLES["array"],
        ),
    }  # fmt: skip
    rows: dict[str, dict[str, float]] = {}
    grown = 0
    for size in SIZES:
        _grow(store.client(), grown, size)
        grown = size
        for case, (call, samples) in cases.items():
            found = call()
            assert found if case == "get by id" else found.docs, case  # measures a real answer
            rows[f"{size:>6,} {case}"] = _timed(call, samples)
    harness.report(
        "emulator_queries",
        rows,
        notes=(
            f"official Firestore emulator; one collection of {', '.join(f'{s:,}' for s in SIZES)} "
            f"documents, the measured org owning {OWN} of them at every size"
        ),
    )
    print(
        f"\n{'case':<26}" + "".join(f"{f'p50 @ {s:,}':>16}" for s in SIZES) + "   ms per 1,000 docs"
    )
    for case in cases:
        p50 = [rows[f"{s:>6,} {case}"]["p50_ms"] for s in SIZES]
        slope = (p50[-1] - p50[0]) / (SIZES[-1] - SIZES[0]) * 1000
        print(f"{case:<26}" + "".join(f"{v:>16.1f}" for v in p50) + f"   {slope:>8.2f}")


def bench_query_cost_against_other_collections(firestore_emulator: official.Emulator) -> None:
    os.environ["FIRESTORE_EMULATOR_HOST"] = firestore_emulator.host
    official.reset_firestore(firestore_emulator)  # the customers above are not "elsewhere" at 0
    store = FirestoreStore(official.PROJECT)
    _grow(store.client(), 0, OWN, LISTENERS)
    mine = [Where("orgId", "==", ORG)]
    rows: dict[str, dict[str, float]] = {}
    grown = 0
    for size in ELSEWHERE:
        _grow(store.client(), grown, size, EXECUTIONS)
        grown = size
        assert len(store.query(LISTENERS, mine).docs) == OWN  # measures real answers
        assert store.get(LISTENERS, "doc_000003")
        rows[f"{size:>6,} elsewhere: orgId == (10 docs)"] = _timed(
            lambda: store.query(LISTENERS, mine), SAMPLES["query"]
        )
        rows[f"{size:>6,} elsewhere: get by id"] = _timed(
            lambda: store.get(LISTENERS, "doc_000003"), SAMPLES["get"]
        )
    harness.report(
        "emulator_queries_elsewhere",
        rows,
        notes=(
            f"official Firestore emulator; a collection of the org's {OWN} documents, another "
            f"collection of {', '.join(f'{s:,}' for s in ELSEWHERE)} documents"
        ),
    )
    p50 = [rows[f"{s:>6,} elsewhere: orgId == (10 docs)"]["p50_ms"] for s in ELSEWHERE]
    slope = (p50[-1] - p50[0]) / (ELSEWHERE[-1] - ELSEWHERE[0]) * 1000
    print(f"query of 10 documents: {slope:.2f} ms more per 1,000 documents in another collection")
