"""The org's dependency graph (domain.md §10.2) so authors can see loops, overlaps and dead ends."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from playbook_core.domain.approval import is_customer_facing
from playbook_core.domain.events import FAN_IN
from playbook_core.domain.playbook import (
    CalendarTrigger,
    EmitStep,
    EventTrigger,
    ManualTrigger,
    PlaybookDefinition,
    Predicate,
    ScheduleTrigger,
    SendEmailStep,
)
from playbook_core.domain.schedules import FREQUENCY_PRESETS
from playbook_core.domain.timezones import DEFAULT_TIMEZONE

# Producers per event (§5.1). Firestore changes, the daily sweep and the ingest API exist for every
# org; webhook topics only for the org's registered platforms. Unlisted events are ingest-only.
_ANY = frozenset({"firestore", "sweep", "ingest"})
_STORES = frozenset({"shopify", "woocommerce"})
_SHOPIFY = frozenset({"shopify"})
_ORDERS = _STORES | {"firestore"}
PRODUCERS: dict[str, frozenset[str]] = {
    "customer.signup": _ORDERS | {"ingest"},
    "customer.updated": _ORDERS,
    "order.created": _ORDERS,
    "order.updated": _ORDERS,
    "order.completed": _ORDERS,
    "order.cancelled": _ORDERS,
    "order.refunded": _STORES,
    "checkout.started": _SHOPIFY,
    "cart.created": _SHOPIFY,
    "inventory.low_stock": _ORDERS | {"ingest"},
    "inventory.new_product": _ORDERS,
    "product.updated": _STORES,
    "owner.day3": frozenset({"sweep"}),
    "customer.birthday": frozenset({"sweep"}),
    "customer.30_day_inactive": frozenset({"sweep"}),
}
# Listener name → the event names whose events also reach it.
_FANNED_FROM = {t: tuple(s for s in FAN_IN if t in FAN_IN[s]) for ts in FAN_IN.values() for t in ts}
_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MINUS = "\u2212"  # the spec's label uses a real minus sign: `customer.birthday −3d 09:00`
_KIND_RANK = {"listens": 0, "triggers": 1, "emits": 2}
_PREFIX = {"event": "E", "playbook": "P", "schedule": "S", "calendar": "C", "manual": "M"}
_SHAPE = {
    "event": '["{}"]',
    "playbook": '["{}"]',
    "schedule": '(("{}"))',
    "calendar": '(("{}"))',
    "manual": '>"{}"]',
}
_ARROW = {"listens": "-->", "triggers": "-->", "emits": "-.->"}
INACTIVE_STYLE = "  classDef inactive stroke-dasharray: 5 5,opacity:0.6"

Graph = dict[str, list[dict[str, Any]]]
EdgeKey = tuple[str, str, str]


@dataclass(frozen=True)
class GraphPlaybook:
    id: str
    name: str
    status: str
    definition: PlaybookDefinition


class _Builder:
    """Collects nodes and edges; repeated edges keep every label (one per trigger)."""

    def __init__(self, org_timezone: str) -> None:
        self.org_timezone = org_timezone
        self.nodes: dict[str, dict[str, Any]] = {}
        self.labels: dict[EdgeKey, list[str | None]] = {}
        self.fan_ins: list[tuple[str, str, str | None]] = []

    def node(self, node_id: str, kind: str, label: str, status: str | None = None) -> str:
        self.nodes[node_id] = {"id": node_id, "kind": kind, "label": label}
        if status is not None:
            self.nodes[node_id]["status"] = status
        return node_id

    def edge(self, source: str, target: str, kind: str, label: str | None = None) -> None:
        self.labels.setdefault((source, target, kind), []).append(label)

    def add(self, p: GraphPlaybook) -> None:
        pid = self.node(f"playbook:{p.id}", "playbook", p.name, p.status)
        for trigger in p.definition.triggers:
            if isinstance(trigger, EventTrigger):
                name, summary = trigger.event_name, filter_summary(trigger.filters)
                self.edge(self.node(f"event:{name}", "event", name), pid, "listens", summary)
                self.fan_ins += [(s, pid, summary) for s in _FANNED_FROM.get(name, ())]
            elif isinstance(trigger, ManualTrigger):
                manual = self.node(f"manual:{p.id}", "manual", "manual", p.status)
                self.edge(manual, pid, "triggers")
            else:
                kind = "schedule" if isinstance(trigger, ScheduleTrigger) else "calendar"
                label = trigger_label(trigger, self.org_timezone)
                trigger_id = self.node(f"{kind}:{p.id}:{trigger.id}", kind, label, p.status)
                self.edge(trigger_id, pid, "triggers")
        for step in p.definition.steps:
            if isinstance(step, EmitStep):
                name = step.params.event_name
                self.edge(pid, self.node(f"event:{name}", "event", name), "emits")

    def add_fan_ins(self) -> None:
        """`order.completed` also reaches `order.post_purchase` listeners (§5.2), marked `via`."""
        direct = set(self.labels)
        for source, pid, summary in self.fan_ins:  # one execution per event: direct wins
            if (f"event:{source}", pid, "listens") not in direct:
                via = f"via: {source}" + (f"; {summary}" if summary else "")
                self.edge(self.node(f"event:{source}", "event", source), pid, "listens", via)


def build_graph(
    playbooks: Iterable[GraphPlaybook],
    platforms: Iterable[str],
    org_timezone: str = DEFAULT_TIMEZONE,
) -> Graph:
    """`{nodes, edges, warnings}`, each list sorted, so equal inputs give equal JSON."""
    shown = sorted(playbooks, key=lambda p: p.id)
    builder = _Builder(org_timezone)
    for p in shown:
        builder.add(p)
    builder.add_fan_ins()
    nodes = builder.nodes
    edges = [_edge(key, found) for key, found in sorted(builder.labels.items())]
    active = {f"playbook:{p.id}": p for p in shown if p.status == "active"}
    warnings = [
        *_cycles(nodes, edges),
        *_overlaps(edges, active),
        *_no_producer(nodes, edges, active, set(platforms)),
        *[{"code": "no_live_trigger", "nodes": [pid]} for pid, p in active.items() if not _live(p)],
    ]
    return {
        "nodes": [nodes[key] for key in sorted(nodes)],
        "edges": edges,
        "warnings": sorted(warnings, key=lambda w: (w["code"], w["nodes"])),
    }


def filter_summary(filters: Iterable[Predicate]) -> str | None:
    """`data.total gt 50 and source.kind eq "shopify"`; None when the trigger has no filters."""
    parts = [
        f"{p.path} {p.op}"
        if p.op in ("exists", "not_exists")
        else f"{p.path} {p.op} {json.dumps(p.value, ensure_ascii=False)}"
        for p in filters
    ]
    return " and ".join(parts) or None


def trigger_label(trigger: ScheduleTrigger | CalendarTrigger, org_timezone: str) -> str:
    """`daily 07:00 America/New_York`, `0 6 * * 1-5 UTC`, `customer.birthday −3d 09:00`."""
    if isinstance(trigger, CalendarTrigger):
        offset = trigger.offset_days
        days = "" if offset == 0 else f"{_MINUS if offset < 0 else '+'}{abs(offset)}d "
        return f"{trigger.date_field} {days}{trigger.at}"
    timezone = trigger.timezone or org_timezone
    if trigger.frequency is None:
        return f"{trigger.cron} {timezone}"
    minute, hour, dom, month, dow = FREQUENCY_PRESETS[trigger.frequency].split()
    words: list[str] = [trigger.frequency]
    if month != "*":
        words.append("/".join(_MONTHS[int(m)] for m in month.split(",")))
    if dom != "*":
        words.append(f"day {dom}")
    if dow != "*":
        words.append(_DAYS[int(dow)])
    return " ".join([*words, f"{int(hour):02d}:{int(minute):02d}", timezone])


def _edge(key: EdgeKey, found: list[str | None]) -> dict[str, Any]:
    source, target, kind = key
    result: dict[str, Any] = {"from": source, "to": target, "kind": kind}
    if None not in found:  # an unfiltered trigger on the same event makes the filters moot
        result["label"] = " or ".join(dict.fromkeys(label for label in found if label))
    return result


def _live(playbook: GraphPlaybook) -> bool:
    return any(not isinstance(t, ManualTrigger) for t in playbook.definition.triggers)


def _reach(start: str, adjacency: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    frontier = list(adjacency.get(start, ()))
    while frontier:
        current = frontier.pop()
        if current not in seen:
            seen.add(current)
            frontier.extend(adjacency.get(current, ()))
    return seen


def _cycles(nodes: dict[str, dict[str, Any]], edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One warning per loop of playbook → event → … → the same playbook (its nodes, sorted)."""
    forward: dict[str, set[str]] = {}
    backward: dict[str, set[str]] = {}
    for e in edges:
        forward.setdefault(e["from"], set()).add(e["to"])
        backward.setdefault(e["to"], set()).add(e["from"])
    loops: set[tuple[str, ...]] = set()
    for node_id in sorted(nodes):
        if nodes[node_id]["kind"] != "playbook":
            continue
        ahead = _reach(node_id, forward)
        if node_id in ahead:
            loops.add(tuple(sorted(ahead & _reach(node_id, backward))))
    return [{"code": "cycle", "nodes": list(loop)} for loop in sorted(loops)]


def _channels(playbook: GraphPlaybook) -> set[str]:
    return {
        "email" if isinstance(step, SendEmailStep) else "sms"
        for step in playbook.definition.steps
        if is_customer_facing(step)
    }


def _overlaps(
    edges: list[dict[str, Any]], active: dict[str, GraphPlaybook]
) -> list[dict[str, Any]]:
    """≥2 active playbooks reached by one event that send to customers on the same channel."""
    reached: dict[str, list[str]] = {}
    for e in edges:
        if e["kind"] == "listens" and e["to"] in active:
            reached.setdefault(e["from"], []).append(e["to"])
    found: set[tuple[str, ...]] = set()
    for event_id, listeners in reached.items():
        for channel in ("email", "sms"):
            senders = sorted(pid for pid in listeners if channel in _channels(active[pid]))
            if len(senders) >= 2:
                found.add((event_id, *senders))
    return [{"code": "overlapping_customer_sends", "nodes": list(f)} for f in sorted(found)]


def _no_producer(
    nodes: dict[str, dict[str, Any]],
    edges: list[dict[str, Any]],
    active: dict[str, GraphPlaybook],
    platforms: set[str],
) -> list[dict[str, Any]]:
    """Listened-to events that nothing produces for this org: no source, sweep or active emitter."""
    emitted = {e["to"] for e in edges if e["kind"] == "emits" and e["from"] in active}
    available = _ANY | (platforms & _STORES)

    def produced(name: str) -> bool:
        producers = PRODUCERS.get(name, frozenset({"ingest"}))
        if producers & available or f"event:{name}" in emitted:
            return True
        return any(produced(source) for source in _FANNED_FROM.get(name, ()))

    listened = {e["from"] for e in edges if e["kind"] == "listens"}
    return [
        {"code": "no_producer", "nodes": [node_id]}
        for node_id in sorted(listened)
        if nodes[node_id]["kind"] == "event" and not produced(node_id.removeprefix("event:"))
    ]


def _escape(label: str) -> str:
    return " ".join(label.replace('"', "#quot;").split())


def to_mermaid(graph: Graph) -> str:
    """`flowchart LR`, one line per edge grouped by playbook, then any unconnected nodes."""
    counters: dict[str, int] = {}
    refs: dict[str, str] = {}
    for n in graph["nodes"]:  # sorted by id, so the numbering is the position within its kind
        prefix = _PREFIX[n["kind"]]
        counters[prefix] = counters.get(prefix, 0) + 1
        style = ":::inactive" if n.get("status", "active") != "active" else ""
        refs[n["id"]] = f"{prefix}{counters[prefix]}{_SHAPE[n['kind']].format(_escape(n['label']))}"
        refs[n["id"]] += style
    order = {n["id"]: i for i, n in enumerate(graph["nodes"])}

    def placement(e: dict[str, Any]) -> tuple[int, int, int]:
        playbook, other = (e["from"], e["to"]) if e["kind"] == "emits" else (e["to"], e["from"])
        return order[playbook], _KIND_RANK[e["kind"]], order[other]

    lines = ["flowchart LR"]
    connected: set[str] = set()
    for e in sorted(graph["edges"], key=placement):
        label = f'|"{_escape(e["label"])}"|' if e.get("label") else ""
        lines.append(f"  {refs[e['from']]} {_ARROW[e['kind']]}{label} {refs[e['to']]}")
        connected |= {e["from"], e["to"]}
    lines += [f"  {refs[n['id']]}" for n in graph["nodes"] if n["id"] not in connected]
    if any(ref.endswith(":::inactive") for ref in refs.values()):
        lines.append(INACTIVE_STYLE)
    return "\n".join(lines) + "\n"
