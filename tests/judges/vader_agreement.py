#!/usr/bin/env python3
"""Independent judge: does the text of template posts follow the author's stance?

Runs `chorus run` on clearly polar events (a team wins, a team loses, a disaster, a rescue),
then scores every post, reply and quote with VADER (vaderSentiment from PyPI, written by
nobody on this team). A post meant to be positive should have compound >= 0.05, a negative one
<= -0.05. Agreement over all polar posts must be at least 90%; neutral posts are not scored.

Usage: python3 tests/judges/vader_agreement.py path/to/chorus [--users N]
"""
import json
import subprocess
import sys
import tempfile
from collections import Counter

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

EVENTS = [
    {"id": "win", "time": 72000, "text": "The Harbor City Redhawks win the championship final in a thrilling overtime victory"},
    {"id": "loss", "time": 90000, "text": "The Redhawks lose the final after a humiliating collapse in the last minute"},
    {"id": "flood", "time": 120000, "text": "Devastating floods destroy hundreds of homes in Cedar Bay, dozens injured"},
    {"id": "rescue", "time": 150000, "text": "Firefighters heroically rescue all forty children trapped in the school fire"},
]


def main():
    chorus = sys.argv[1]
    users = sys.argv[sys.argv.index("--users") + 1] if "--users" in sys.argv else "200000"
    with tempfile.TemporaryDirectory() as d:
        events = f"{d}/events.jsonl"
        out = f"{d}/timeline.jsonl"
        with open(events, "w") as f:
            for e in EVENTS:
                f.write(json.dumps(e) + "\n")
        subprocess.run([chorus, "run", "--users", users, "--events", events, "--out", out, "-q"], check=True)
        posts = [json.loads(line) for line in open(out)]
    analyzer = SentimentIntensityAnalyzer()
    agree, scored, by = 0, 0, Counter()
    for p in posts:
        if p["kind"] not in ("post", "reply", "quote") or p["sentiment"] == "neutral":
            continue
        compound = analyzer.polarity_scores(p["text"])["compound"]
        ok = compound >= 0.05 if p["sentiment"] == "positive" else compound <= -0.05
        scored += 1
        agree += ok
        by[(p["event"], p["sentiment"], ok)] += 1
    share = agree / scored if scored else 0.0
    for (event, sentiment, ok), n in sorted(by.items()):
        print(f"  {event:<7} {sentiment:<9} {'agree' if ok else 'disagree':<9} {n}")
    print(f"VADER agreement: {agree} of {scored} polar posts ({share:.1%}); required 90%")
    if scored < 200:
        print(f"too few polar posts to judge ({scored})")
        return 1
    return 0 if share >= 0.90 else 1


if __name__ == "__main__":
    sys.exit(main())
