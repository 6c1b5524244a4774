#!/usr/bin/env python3
"""Browser test of the live viewer served by `chorus serve` at GET /.

Usage: python viewer.py BASE_URL [SESSION_ID]
  e.g. python viewer.py http://127.0.0.1:8080 s1
With env CHORUS_TOKEN set, the page is opened with ?token=... (the server's bearer token).

Drives Debian's chromium (env CHORUS_CHROMIUM, default /usr/bin/chromium) headless through
Playwright (scripts/browser-env.sh makes the venv). It sends an event from the page, waits
for the event's posts to arrive on the SSE feed (within 1 s of the click), forks, posts the
what-if event to the fork and loads the comparison chart. Any console error or uncaught page
error fails the run. Prints one line of JSON on stdout; exit 0 on success, 1 on failure.
"""
import json
import os
import sys
import time
from urllib.parse import quote

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

EVENT_ID = "browser-final"
EVENT_TEXT = "The Redhawks win the final 3-1 in overtime"
FORK_TEXT = "The Redhawks lose the final 1-3"
POST_WAIT_MS = 1000
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Failure(Exception):
    pass


def run(base, session):
    query = []
    if session:
        query.append("session=" + quote(session))
    if os.environ.get("CHORUS_TOKEN"):
        query.append("token=" + quote(os.environ["CHORUS_TOKEN"]))
    url = base.rstrip("/") + "/" + ("?" + "&".join(query) if query else "")
    chromium = os.environ.get("CHORUS_CHROMIUM", "/usr/bin/chromium")
    errors = []
    summary = {"url": url}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: m.type == "error" and errors.append(
                "console: " + m.text + (" @ " + m.location.get("url", "") if m.location else "")))
            page.on("pageerror", lambda e: errors.append("pageerror: " + str(e)))

            def check_errors(step):
                if errors:
                    raise Failure(step + ": page reported errors: " + " | ".join(errors))

            def header_error():
                return (page.text_content("#header-error") or "").strip()

            page.goto(url, wait_until="domcontentloaded", timeout=10_000)
            try:
                page.wait_for_function(
                    "() => (document.getElementById('session-id')||{}).textContent", timeout=10_000)
            except PlaywrightTimeout:
                raise Failure("header never showed a session id; header error: %r" % header_error())
            summary["session"] = page.text_content("#session-id").strip()
            # The SSE stream must be subscribed before the event is sent, or the posts are missed.
            try:
                page.wait_for_selector('#stream-status[data-state="open"]', state="attached",
                                       timeout=5_000)
                summary["stream_open"] = True
            except PlaywrightTimeout:
                summary["stream_open"] = False  # headers not flushed yet; posts may still come
            page.wait_for_function("() => document.getElementById('events').children.length > 0",
                                   timeout=5_000)
            check_errors("load")

            page.fill("#event-text", EVENT_TEXT)
            page.fill("#event-id", EVENT_ID)
            t0 = time.monotonic()
            page.click("#send")
            selector = '.post[data-event="%s"]' % EVENT_ID
            left = POST_WAIT_MS - (time.monotonic() - t0) * 1000
            try:
                page.wait_for_selector(selector, timeout=max(left, 1))
            except PlaywrightTimeout:
                got = page.evaluate("(e) => window.chorus && window.chorus.byEvent[e] || 0", EVENT_ID)
                raise Failure("no %s card within %d ms of the click (stream received %d entries of "
                              "the event; send-status %r, send-error %r, stream %r)" % (
                                  selector, POST_WAIT_MS, got,
                                  page.text_content("#send-status"),
                                  page.text_content("#send-error"),
                                  page.text_content("#stream-status")))
            summary["first_post_ms"] = round((time.monotonic() - t0) * 1000, 1)
            try:
                page.wait_for_function(
                    "() => /posts/.test(document.getElementById('send-status').textContent)",
                    timeout=10_000)
            except PlaywrightTimeout:
                raise Failure("#send-status never said 'posts': status %r, error %r" % (
                    page.text_content("#send-status"), page.text_content("#send-error")))
            summary["send_status"] = page.text_content("#send-status").strip()
            try:
                page.wait_for_function(
                    "(e) => [...document.querySelectorAll('.event-row')]"
                    ".some(r => r.textContent.includes(e))", arg=EVENT_ID, timeout=5_000)
            except PlaywrightTimeout:
                raise Failure("no .event-row mentions %s" % EVENT_ID)
            page.wait_for_timeout(300)  # let the rest of the first wave land
            summary["posts_seen"] = page.locator(selector).count()
            summary["stream_received"] = page.evaluate(
                "(e) => window.chorus.byEvent[e] || 0", EVENT_ID)
            check_errors("send")

            page.click("#fork")
            try:
                page.wait_for_function(
                    "() => { const t = document.getElementById('fork-id').textContent;"
                    " return t && t !== 'none'; }", timeout=10_000)
            except PlaywrightTimeout:
                raise Failure("fork never showed an id; fork-error %r" % page.text_content("#fork-error"))
            summary["fork"] = page.text_content("#fork-id").strip()
            page.fill("#fork-text", FORK_TEXT)
            page.click("#fork-send")
            try:
                page.wait_for_function(
                    "() => /posts/.test(document.getElementById('fork-status').textContent)",
                    timeout=10_000)
            except PlaywrightTimeout:
                raise Failure("fork event not accepted: fork-status %r, fork-error %r" % (
                    page.text_content("#fork-status"), page.text_content("#fork-error")))
            summary["fork_status"] = page.text_content("#fork-status").strip()

            page.click("#compare")
            try:
                page.wait_for_selector("#chart svg, #chart img", state="attached", timeout=5_000)
            except PlaywrightTimeout:
                raise Failure("no chart within 5 s; compare-error %r" % page.text_content("#compare-error"))
            summary["compare_rows"] = page.locator("#compare-table tr").count()
            page.wait_for_timeout(200)
            check_errors("compare")
            summary["console_errors"] = 0
        finally:
            browser.close()
    return summary


def main():
    if len(sys.argv) < 2:
        print("usage: viewer.py BASE_URL [SESSION_ID]", file=sys.stderr)
        return 2
    base = sys.argv[1]
    session = sys.argv[2] if len(sys.argv) > 2 else None
    try:
        summary = run(base, session)
    except Failure as e:
        print("viewer.py: FAIL: %s" % e, file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(e)}))
        return 1
    except PlaywrightError as e:
        print("viewer.py: FAIL: playwright: %s" % e, file=sys.stderr)
        print(json.dumps({"ok": False, "error": "playwright: " + str(e).splitlines()[0]}))
        return 1
    summary["ok"] = True
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
