#!/usr/bin/env python3
"""Grounding judge by text source: for a timeline written by `chorus run` (with --llm), embeds
every root post and quote with all-MiniLM-L6-v2 (tests/judges/minilm.py) and the run's event
texts, ranks the events by cosine to each post, and reports top-1 / top-5 per `source`
(template, bank, llm, cache), with the share of root posts carrying LLM text (bank or llm).

Usage: python3 scripts/judge_sources.py EVENTS.jsonl TIMELINE.jsonl [--per-source N] [--seed S]
Run it with the python of scripts/judge-env.sh.
"""
import argparse
import json
import os
import random
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "judges"))
import minilm  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("events")
    ap.add_argument("timeline")
    ap.add_argument("--per-source", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    events = [json.loads(l) for l in open(a.events) if l.strip() and not l.startswith("#")]
    ids = [e["id"] for e in events]
    by = defaultdict(list)
    roots = defaultdict(int)
    for line in open(a.timeline):
        p = json.loads(line)
        if p["kind"] == "post":
            roots[p.get("source", "template")] += 1
        if p["kind"] in ("post", "quote") and p.get("text"):
            by[p.get("source", "template")].append((p["event"], p["text"]))
    m = minilm.model()
    E = m.embed([e["text"] for e in events])
    rnd = random.Random(a.seed)
    out = {"events": len(events), "chance_top1": 1 / len(events), "roots": dict(roots)}
    total = sum(roots.values())
    out["root_share_llm_text"] = (roots.get("bank", 0) + roots.get("llm", 0)) / max(total, 1)
    for src, rows in sorted(by.items()):
        rows = rnd.sample(rows, min(a.per_source, len(rows)))
        V = m.embed([t for _, t in rows])
        S = V @ E.T
        order = np.argsort(-S, axis=1)
        want = np.array([ids.index(e) for e, _ in rows])
        top1 = float(np.mean(order[:, 0] == want))
        top5 = float(np.mean([w in o[:5] for w, o in zip(want, order)]))
        out[src] = {"posts": len(rows), "top1": round(top1, 3), "top5": round(top5, 3)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
