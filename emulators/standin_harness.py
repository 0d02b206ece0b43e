"""Agent-harness stand-in (§11.3): `POST /v1/run` with scripted FIFO answers and playbook drafts."""

from __future__ import annotations

import hmac
import re
import threading
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

from emulators.standin_core import Provider, Reply, Request, json_reply

DRAFTS_DIR = Path(__file__).with_name("drafts")
# Agents a delegate step may name (glossary, §1); `system` cannot be delegated to.
AGENTS = frozenset(
    {
        "smokey",
        "craig",
        "pops",
        "ezal",
        "deebo",
        "big_worm",
        "money_mike",
        "mrs_parker",
        "leo",
        "linus",
        "jack",
    }
)
# First match wins, so the more specific goals come first; `generic` is the fallback.
_DRAFT_RULES = (
    ("low_stock", re.compile(r"low stock")),
    ("welcome", re.compile(r"welcome|sign ?up")),
    ("win_back", re.compile(r"win ?back|inactive")),
    ("weekly_report", re.compile(r"weekly report|kpi")),
    ("competitor_price", re.compile(r"competitor'?s? pric")),
)
_GENERIC = "generic"
_ANY_AGENT = "*"


def default_output() -> dict[str, Any]:
    return {
        "title": "Test title",
        "body": "Test body",
        "summary": "Test summary",
        "sms": "Test sms",
    }


def choose_draft(goal: Any) -> str:
    """The draft name a `compose_playbook` goal selects, by keyword."""
    if not isinstance(goal, str):
        return _GENERIC
    text = re.sub(r"[\s_-]+", " ", goal.lower())
    return next((name for name, rule in _DRAFT_RULES if rule.search(text)), _GENERIC)


def load_drafts(directory: Path = DRAFTS_DIR) -> dict[str, str]:
    """Read every draft minus its leading comments, which describe the file, not the playbook."""
    drafts: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        while lines and lines[0].startswith("#"):
            lines.pop(0)
        drafts[path.stem] = "".join(lines)
    missing = ({name for name, _ in _DRAFT_RULES} | {_GENERIC}) - set(drafts)
    if missing:
        raise FileNotFoundError(f"missing playbook drafts in {directory}: {sorted(missing)}")
    return drafts


def _error(status: int, code: str, message: str) -> Reply:
    return json_reply(status, {"error": {"code": code, "message": message}})


class HarnessStandIn(Provider):
    name: ClassVar[str] = "agents"
    # A delegate step may allow up to 300 s, but 20-30 s is the norm; a longer hold only keeps a
    # thread parked, and any behaviour change or stop releases it anyway.
    timeout_sleep_s: ClassVar[float] = 40.0

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()
        self._drafts = load_drafts()
        self._lock = threading.Lock()
        self._queues: dict[str, deque[dict[str, Any]]] = {}

    def handle(self, request: Request) -> Reply:
        problem = self._check(request)
        if problem is not None:
            return problem
        payload: dict[str, Any] = request.body
        agent, task = payload["agent"], payload["task"]
        scripted = self._next_scripted(agent)
        if scripted is not None:
            return json_reply(200, scripted, agent=agent, task=task, scripted=True)
        answer = {
            "output": self._default_output(task, payload.get("input") or {}),
            "score": 100,
            "issues": [],
            "remediation": None,
        }
        return json_reply(200, answer, agent=agent, task=task, scripted=False)

    def _check(self, request: Request) -> Reply | None:
        """The 4xx a real harness would give this request, or None when it is runnable."""
        if request.path != "/v1/run":
            return _error(404, "not_found", f"No route for {request.path}.")
        if request.method != "POST":
            return _error(405, "method_not_allowed", "Use POST /v1/run.")
        if not hmac.compare_digest(request.header("Authorization").encode(), self._expected):
            return _error(401, "unauthorized", "Missing or invalid harness token.")
        payload = request.body
        if not request.is_json or not isinstance(payload, dict):
            return _error(400, "invalid_request", "The body must be a JSON object.")
        if payload.get("agent") not in AGENTS:
            return _error(400, "unknown_agent", f"Unknown agent {payload.get('agent')!r}.")
        task = payload.get("task")
        problems = [] if isinstance(task, str) and task.strip() else ["task must be non-empty text"]
        problems += [
            f"{key} must be an object"
            for key in ("input", "context")
            if not isinstance(payload.get(key) or {}, dict)
        ]
        return _error(400, "invalid_request", "; ".join(problems) + ".") if problems else None

    def control(self, request: Request) -> Reply | None:
        if request.path != "/__responses":
            return None
        if request.method == "POST":
            return self._queue(request.body)
        if request.method == "GET":
            with self._lock:
                queued = {agent: list(queue) for agent, queue in self._queues.items() if queue}
            return json_reply(200, {"queued": queued})
        if request.method == "DELETE":
            with self._lock:
                self._queues.clear()
            return json_reply(200, {"queued": {}})
        return None

    def _queue(self, body: Any) -> Reply:
        answers = body if isinstance(body, list) else [body]
        if not answers or not all(isinstance(answer, dict) for answer in answers):
            return _error(400, "invalid_response", "Send an answer object or a list of them.")
        if not all(isinstance(answer.get("agent", ""), str | None) for answer in answers):
            return _error(400, "invalid_response", "agent must be a string when given.")
        with self._lock:
            for answer in answers:
                # Stored as given (minus `agent`) so tests can script protocol errors too.
                scripted = {key: value for key, value in answer.items() if key != "agent"}
                agent = answer.get("agent") or _ANY_AGENT
                self._queues.setdefault(agent, deque()).append(scripted)
            counts = {agent: len(queue) for agent, queue in self._queues.items() if queue}
        return json_reply(200, {"queued": counts})

    def _next_scripted(self, agent: str) -> dict[str, Any] | None:
        with self._lock:
            for key in (agent, _ANY_AGENT):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _default_output(self, task: str, task_input: dict[str, Any]) -> dict[str, Any]:
        if task == "compose_playbook":
            return {"yaml": self._drafts[choose_draft(task_input.get("goal"))]}
        return default_output()
