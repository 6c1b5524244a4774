"""A 20-line chorus serve client with httpx: create a session, send an event, read the feed.
Usage: python examples/client.py http://127.0.0.1:8080 [TOKEN]"""
import sys, httpx

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
headers = {"Authorization": f"Bearer {sys.argv[2]}"} if len(sys.argv) > 2 else {}
with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
    session = c.post("/v1/sessions", json={"users": 20000, "seed": 42}).raise_for_status().json()
    sid = session["id"]
    event = {"id": "final", "time": 72000, "text": "The Redhawks win the cup final 3-1 in overtime"}
    wave = c.post(f"/v1/sessions/{sid}/events", json=event, headers={"Idempotency-Key": "final-1"}).raise_for_status().json()
    print(f"{wave['event']}: {wave['category']}/{wave['kind']}, {wave['total']} posts, first wave {len(wave['posts'])}")
    for p in wave["posts"][:5]:
        if p.get("text"):
            print(f"  @{p['handle']}: {p['text']}")
    author = wave["posts"][0]["author"]
    home = c.get(f"/v1/sessions/{sid}/users/{author}/home", params={"limit": 5}).raise_for_status().json()
    print(f"home of user {author}: {len(home['posts'])} posts")
    print("trending:", [t["tag"] for t in c.get(f"/v1/sessions/{sid}/trends").json()["tags"]])
