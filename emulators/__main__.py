"""`python -m emulators dev|up|down`: the local stack's command line (make dev / up / down)."""

from __future__ import annotations

import sys

PLAN = """\
make dev will start, on 127.0.0.1:
  - the official Firestore and Pub/Sub emulators (embedded store and in-process bus without Java)
  - our Cloud Tasks and Cloud Scheduler emulators (emulators/cloud_tasks.py, cloud_scheduler.py)
  - every function of functions/manifest.yaml behind the gateway on :8080
  - stand-ins for Mailjet, Blackleaf, the agent harness and Slack (emulators/standins.py)
then seed the demo org and play the demo of ../shared/spec/api.md section 2.
The stack runner lands with the local-stack issue; today this prints the plan only.
"""


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "dev"
    if command not in ("dev", "up", "down"):
        print(f"usage: python -m emulators dev|up|down (got {command!r})", file=sys.stderr)
        return 2
    print(PLAN)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
