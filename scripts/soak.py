#!/usr/bin/env python3
"""Soak run (issue 23): a long `chorus run` with its memory sampled.

    python3 scripts/soak.py [--users 1000000] [--reps 125] [--days 500] [--scale 1] [--every 1000] [--chorus target/release/chorus]

Plays `scripts/long_events.py REPS DAYS SCALE` (125 × 80 = 10,000 events over 500 game days:
the demo's own pace, 4 days per 80 events) on USERS
users, saving the state every EVERY events, with the timeline streamed to /dev/null. RSS is
sampled from /proc every 0.2 s. Each save marks EVERY events done. For each block of EVERY
events, the script prints the seconds it took, the events per second, and the RSS at its end.
At the end it prints:
- the growth of RSS after the first block (target ≤ 5%);
- the throughput of the last block against the first after it (the first block has the
  warm-up; target within 10%);
- the events in and the events processed, and the entries chorus counted out.
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=125)
    ap.add_argument("--days", type=float, default=500)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--chorus", default=str(ROOT / "target" / "release" / "chorus"))
    ap.add_argument("--extra", default="", help="more arguments for chorus run")
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="chorus-soak-"))
    events = work / "events.jsonl"
    with open(events, "w") as f:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "long_events.py"), str(a.reps), str(a.days), str(a.scale)], stdout=f, check=True)
    n_in = sum(1 for l in open(events) if l.strip())
    state = work / "soak.state"
    cmd = [a.chorus, "run", "--events", str(events), "--users", str(a.users), "-q", "--out", "/dev/null",
           "--save-state", str(state), "--save-every", str(a.every)] + a.extra.split()
    print("$", " ".join(cmd), flush=True)
    start = time.time()
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    marks = []  # (seconds, rss at the save, peak rss during the block)
    peak = 0.0
    block_peak = 0.0
    last_mtime = None
    while p.poll() is None:
        r = rss_mib(p.pid)
        peak = max(peak, r)
        block_peak = max(block_peak, r)
        try:
            m = os.stat(state).st_mtime_ns
        except OSError:
            m = None
        if m is not None and m != last_mtime and r > 0 and not (work / "soak.state.tmp").exists():
            last_mtime = m
            marks.append((time.time() - start, r, block_peak))
            k = len(marks)
            dt = marks[-1][0] - (marks[-2][0] if k > 1 else 0)
            print(f"events {k * a.every:>6}: block {dt:7.1f} s ({a.every / dt:7.1f} events/s), RSS {r:8.1f} MiB at the save, "
                  f"peak {block_peak:8.1f} MiB in the block", flush=True)
            block_peak = r
        time.sleep(0.2)
    err = p.stderr.read()
    total = time.time() - start
    print("\n".join(l for l in err.splitlines() if l.startswith("saved after")))
    print("\n".join(l for l in err.splitlines() if not l.startswith("saved after"))[-3000:])
    if p.returncode != 0:
        print(f"chorus exited {p.returncode}")
        return 1
    processed = next((l for l in err.splitlines() if l.startswith("events ") and "processed" in l), "")
    entries = next((l for l in err.splitlines() if l.startswith("timeline ")), "")
    print(f"\nevents in {n_in}; {processed}")
    print(entries.split(":")[0])
    print(f"wall {total:.1f} s, peak RSS {peak:.1f} MiB")
    if len(marks) >= 3:
        # Memory: the peak while the first EVERY events were played (population included)
        # against the peak of any later block.
        base = marks[0][2]
        later = max(pk for _, _, pk in marks[1:])
        growth = (later - base) / base * 100
        print(f"peak RSS in block 1: {base:.1f} MiB; highest peak later {later:.1f} MiB: growth {growth:+.1f}% (target ≤ 5%)")
        at_saves = [r for _, r, _ in marks]
        print(f"RSS at the saves: {', '.join(f'{r:.0f}' for r in at_saves)} MiB")
        # Throughput: block 2 (after the warm-up) against the last full block (the final
        # mark also holds the last write and save).
        blocks = [marks[i][0] - marks[i - 1][0] for i in range(1, len(marks))]
        first, last = blocks[0], blocks[-2] if len(blocks) > 1 else blocks[-1]
        print(f"block 2 {first:.1f} s, block {len(blocks)} {last:.1f} s: events per second at the end {first / last * 100:.0f}% of the start (target ≥ 90%)")
        made = [int(l.split(" entries made")[0].split()[-1]) for l in err.splitlines() if l.startswith("saved after")]
        if len(made) >= 3:
            rates = [(made[i] - made[i - 1]) / (marks[i][0] - marks[i - 1][0]) for i in range(1, len(made))]
            print("entries per second by block (from block 2): " + ", ".join(f"{r:,.0f}" for r in rates))
            print(f"entries per second at the end {rates[-1] / rates[0] * 100:.0f}% of the start (target ≥ 90%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
