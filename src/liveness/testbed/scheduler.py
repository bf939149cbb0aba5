"""The router's clock: switches connectivity events and bursty-loss states on time.

Run as ``python -m liveness.testbed.scheduler PLAN.json`` inside the router namespace. The plan
holds ``t0`` (``time.time()`` of schedule second 0), ``steps`` (``[seconds, nft commands]``:
adding elements to, or flushing, the sets the router's drop rules match) and ``gemodel``
(``{set, good_ms, bad_ms, seed, tables}``: a Gilbert-Elliott path whose bad state is on while
its set holds every address, 0.0.0.0/0 in table ``ip liveness`` and ::/0 in ``ip6 liveness``,
with exponential sojourn times; ``tables`` lists the families it has a set in, default
``["ip"]``). Each change is fed to ``nft -f -``.
It runs until killed by ``down`` (or exits after the last step when there is no bursty loss).
"""

from __future__ import annotations

import heapq
import json
import random
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]

EVERYTHING = {"ip": "0.0.0.0/0", "ip6": "::/0"}


def _nft(commands: str, label: str, t0: float) -> None:
    done = subprocess.run(["nft", "-f", "-"], input=commands, text=True, capture_output=True)
    if done.returncode != 0 or label.startswith("step"):
        status = "ok" if done.returncode == 0 else f"failed: {done.stderr.strip()}"
        print(f"t={time.time() - t0:.3f} {label}: {status}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Apply each step and each loss-state change at its time."""
    args = sys.argv[1:] if argv is None else argv
    plan = json.loads(Path(args[0]).read_text())
    t0 = float(plan["t0"])
    queue: list[tuple[float, int, str, str]] = []  # (time, order, label, nft commands)
    for k, (at, commands) in enumerate(plan["steps"]):
        queue.append((t0 + float(at), k, f"step at {at}", commands))
    models = plan.get("gemodel", [])
    rngs = [random.Random(model["seed"]) for model in models]
    bad = [False] * len(models)
    for k, model in enumerate(models):
        first = t0 + rngs[k].expovariate(1000.0 / model["good_ms"])
        queue.append((first, -1 - k, f"gemodel {k}", ""))
    heapq.heapify(queue)
    while queue:
        when, order, label, commands = heapq.heappop(queue)
        delay = when - time.time()
        if delay > 0:
            time.sleep(delay)
        if order >= 0:
            _nft(commands, label, t0)
            continue
        k = -1 - order
        model = models[k]
        bad[k] = not bad[k]
        name = model["set"]
        commands = []
        for table in model.get("tables", ["ip"]):
            commands.append(f"flush set {table} liveness {name}")
            if bad[k]:
                commands.append(f"add element {table} liveness {name} {{ {EVERYTHING[table]} }}")
        _nft("\n".join(commands) + "\n", label, t0)
        mean_ms = model["bad_ms"] if bad[k] else model["good_ms"]
        heapq.heappush(queue, (when + rngs[k].expovariate(1000.0 / mean_ms), order, label, ""))


if __name__ == "__main__":
    main()
