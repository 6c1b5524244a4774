#!/usr/bin/env python3
"""Print a 14-game-day event script: the demo events 50 times (4,000 events).

Each repetition is compressed to a quarter of its game time and starts 14/50 of a day after the
one before; ids are prefixed `r{k}_`. Used for the long dynamics run in docs/BEHAVIOUR.md:

    python3 scripts/long_events.py > long.jsonl
    chorus run --events long.jsonl --users 100000 --activity 0.25 -q --out t.jsonl --save-state t.state
    chorus stats --timeline t.jsonl --users 100000 --state t.state
"""
import json
import pathlib
import sys

DEMO = pathlib.Path(__file__).resolve().parent.parent / "examples" / "events" / "demo.jsonl"


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    events = [json.loads(l) for l in DEMO.read_text().splitlines() if l.strip() and not l.startswith("#")]
    span = 14 * 86_400
    out = []
    for k in range(reps):
        offset = k * span // reps
        for e in events:
            e2 = dict(e, id=f"r{k}_{e['id']}", time=int(e["time"] * 0.25) + offset)
            out.append(e2)
    out.sort(key=lambda e: e["time"])
    sys.stdout.write("".join(json.dumps(e) + "\n" for e in out))


if __name__ == "__main__":
    main()
