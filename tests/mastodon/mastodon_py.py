"""Client-side check of chorus's Mastodon-compatible API with Mastodon.py (pinned by
scripts/mastodon-env.sh). Env: CHORUS_BASE (http://host:port), CHORUS_TOKEN (bearer token of
the player's account). Exit 0 and a one-line summary on success; exit 1 with the failed step
otherwise. Everything is bounded by CHORUS_MASTODON_TIMEOUT seconds (default 60)."""
import os, signal, sys, time
import requests
from mastodon import Mastodon, StreamListener

BASE = os.environ["CHORUS_BASE"].rstrip("/")
TOKEN = os.environ["CHORUS_TOKEN"]
LIMIT = int(os.environ.get("CHORUS_MASTODON_TIMEOUT", "60"))
step = "start"


def fail(msg):
    print(f"mastodon_py: FAIL at {step}: {msg}", file=sys.stderr, flush=True)
    os._exit(1)  # the stream thread must not keep us alive


def check(cond, msg):
    if not cond:
        fail(msg)


signal.signal(signal.SIGALRM, lambda *_: fail(f"overall timeout of {LIMIT}s"))
signal.alarm(LIMIT)


class Counter(StreamListener):
    def __init__(self):
        self.updates, self.ids, self.errors = 0, set(), []

    def on_update(self, status):
        if "id" not in status or "account" not in status or "created_at" not in status:
            self.errors.append(f"stream update without id/account/created_at: {dict(status)!r:.200}")
        self.updates += 1
        self.ids.add(status["id"])

    def on_abort(self, err):
        self.errors.append(f"stream aborted: {err!r}")


def main():
    global step
    # Mastodon.py recurses forever (RecursionError) when /api/v1/instance/ fails, so say it plainly.
    step = "GET /api/v1/instance/"
    r = requests.get(f"{BASE}/api/v1/instance/", timeout=10)
    check(r.ok and isinstance(r.json().get("version"), str), f"HTTP {r.status_code}: {r.text[:200]!r}")
    step = "construct (version_check_mode=created)"
    m = Mastodon(api_base_url=BASE, access_token=TOKEN, version_check_mode="created", request_timeout=10)
    check(m.verify_minimum_version("3.5.0", cached=True),
          f"server version not parsed as >= 3.5.0 (got {m.mastodon_major}.{m.mastodon_minor}.{m.mastodon_patch});"
          " /api/v1/instance/ must return version like \"4.3.0\"")

    step = "verify_credentials"
    me = m.account_verify_credentials()
    check(me.id and me.acct, f"no id/acct in {me!r:.200}")

    step = "stream_public (SSE)"
    listener = Counter()
    handle = m.stream_public(listener, run_async=True, timeout=30)
    time.sleep(0.5)  # let the connection open before the post that triggers the reactions

    step = "status_post"
    text = "Breaking: the Redhawks beat the Ironclads 3-1 in the cup final at Harbor Arena"
    posted = m.status_post(text, visibility="public")
    check(posted.id, "posted status has no id")
    check(str(posted.account.id) == str(me.id), "posted status is not by the token's account")
    check(posted.created_at is not None and hasattr(posted.created_at, "year"), "created_at not a date")

    step = "status_context"
    deadline = time.time() + 20
    while True:
        ctx = m.status_context(posted.id)
        if len(ctx.descendants) >= 1 or time.time() > deadline:
            break
        time.sleep(0.5)
    check(len(ctx.descendants) >= 1, "no reply in descendants within 20 s")
    by_id = {str(s.id): s for s in ctx.descendants}
    for s in ctx.descendants:
        cur, hops = s, 0
        while str(cur.in_reply_to_id) != str(posted.id):
            check(cur.in_reply_to_id is not None and str(cur.in_reply_to_id) in by_id and hops < 100,
                  f"descendant {s.id} does not lead back to {posted.id} (stuck at {cur.id})")
            cur, hops = by_id[str(cur.in_reply_to_id)], hops + 1

    step = "stream_public updates"
    deadline = time.time() + 20
    while listener.updates < 10 and not listener.errors and time.time() < deadline and handle.is_alive():
        time.sleep(0.2)
    check(not listener.errors, listener.errors[:1])
    check(listener.updates >= 10, f"only {listener.updates} updates on the public stream in 20 s"
                                  f" (stream thread alive: {handle.is_alive()})")
    handle.close()

    step = "timeline_home + fetch_next"
    home = m.timeline_home(limit=20)
    check(len(home) >= 1, "home timeline empty after posting")
    ids = [str(s.id) for s in home]
    older = m.fetch_next(home)
    if older:
        more = [str(s.id) for s in older]
        check(not set(ids) & set(more), "fetch_next returned statuses of the first page")
    some = next((s for s in home if str(s.account.id) != str(me.id) and not s.reblog), home[0])

    step = "status"
    st = m.status(some.id)
    check(str(st.id) == str(some.id), "status(id) returned another id")

    step = "account"
    acc = m.account(some.account.id)
    check(isinstance(acc.followers_count, int) and isinstance(acc.following_count, int) and acc.acct,
          f"account lacks int followers_count/following_count or acct: {acc!r:.200}")

    step = "account_statuses / account_followers / account_following"
    check(isinstance(m.account_statuses(acc.id, limit=5), list), "account_statuses not a list")
    check(isinstance(m.account_followers(me.id, limit=5), list), "account_followers not a list")
    check(isinstance(m.account_following(me.id, limit=5), list), "account_following not a list")

    step = "timeline_hashtag / trending_tags"
    tag = next((t.name for s in list(home) + ctx.descendants for t in s.tags), None)
    if tag:
        check(isinstance(m.timeline_hashtag(tag.lstrip("#"), limit=5), list), "timeline_hashtag not a list")
    trends = m.trending_tags()
    check(isinstance(trends, list), "trending_tags not a list")

    step = "status_favourite / status_reblog"
    before = m.status(some.id)
    m.status_favourite(some.id)
    m.status_reblog(some.id)
    after = m.status(some.id)
    check(after.favourited is True or after.favourites_count > before.favourites_count,
          "status(id) after status_favourite shows neither favourited nor a higher favourites_count")
    check(after.reblogged is True or after.reblogs_count > before.reblogs_count,
          "status(id) after status_reblog shows neither reblogged nor a higher reblogs_count")

    print(f"mastodon_py: OK: {len(ctx.descendants)} replies, {listener.updates} stream updates,"
          f" home {len(home)}+{len(older or [])}, tag={tag!r}, {len(trends)} trending tags")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # Mastodon.py errors carry the HTTP status and the server's message
        fail(f"{type(e).__name__}: {e}")
    sys.stdout.flush()
    os._exit(0)
