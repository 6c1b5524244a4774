#!/usr/bin/env python3
"""Print a long event script: the demo events REPS times (default 50: 4,000 events) over DAYS
game days (default 14), each repetition's game time scaled by SCALE (default 0.25).

    long_events.py [REPS [DAYS [SCALE]]]

Each repetition is compressed to SCALE of its game time and starts DAYS/REPS of a day after
the one before; ids are prefixed `r{k}_`. Used for the long dynamics run in docs/BEHAVIOUR.md
(and, as `long_events.py 125 500 1`, the demo's own pace for 10,000 events, for the soak run
of scripts/soak.py):

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
    days = float(sys.argv[2]) if len(sys.argv) > 2 else 14
    scale = float(sys.argv[3]) if len(sys.argv) > 3 else 0.25
    events = [json.loads(l) for l in DEMO.read_text().splitlines() if l.strip() and not l.startswith("#")]
    span = int(days * 86_400)
    out = []
    for k in range(reps):
        offset = k * span // reps
        for e in events:
            e2 = dict(e, id=f"r{k}_{e['id']}", time=int(e["time"] * scale) + offset)
            out.append(e2)
    out.sort(key=lambda e: e["time"])
    sys.stdout.write("".join(json.dumps(e) + "\n" for e in out))


if __name__ == "__main__":
    main()
