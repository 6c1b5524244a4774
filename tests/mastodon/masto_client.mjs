// Client-side check of chorus's Mastodon-compatible API with masto (npm, pinned in package.json,
// installed by scripts/mastodon-env.sh). Env: CHORUS_BASE (http://host:port), CHORUS_TOKEN.
// Exit 0 with a one-line summary, or 1 with the failed step. Bounded by CHORUS_MASTODON_TIMEOUT s.
import { createRestAPIClient, createStreamingAPIClient } from "masto";

const base = process.env.CHORUS_BASE.replace(/\/$/, "");
const accessToken = process.env.CHORUS_TOKEN;
const limitS = Number(process.env.CHORUS_MASTODON_TIMEOUT ?? 60);
let step = "start";
const fail = (msg) => {
  console.error(`masto_client: FAIL at ${step}: ${msg}`);
  process.exit(1);
};
const check = (cond, msg) => cond || fail(msg);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
setTimeout(() => fail(`overall timeout of ${limitS}s`), limitS * 1000);

async function main() {
  const rest = createRestAPIClient({ url: base, accessToken, timeout: 10_000 });
  step = "verifyCredentials";
  const me = await rest.v1.accounts.verifyCredentials();
  check(me.id && me.acct, `no id/acct: ${JSON.stringify(me).slice(0, 200)}`);

  step = "v2.instance (configuration.urls.streaming)";
  const instance = await rest.v2.instance.fetch();
  const streamingApiUrl = instance.configuration?.urls?.streaming;
  check(streamingApiUrl, "GET /api/v2/instance has no configuration.urls.streaming");

  step = "statuses.create";
  const text = "Breaking: the Redhawks beat the Ironclads 3-1 in the cup final at Harbor Arena";
  const posted = await rest.v1.statuses.create({ status: text, visibility: "public" });
  check(posted.id && posted.account?.id === me.id, "posted status lacks id or is not by the token's account");

  step = "timelines.home.list";
  const pages = rest.v1.timelines.home.list({ limit: 10 }).values();
  const first = (await pages.next()).value;
  check(Array.isArray(first) && first.length >= 1, "home timeline empty after posting");
  const second = (await pages.next()).value ?? [];
  const seen = new Set(first.map((s) => s.id));
  check(!second.some((s) => seen.has(s.id)), "second page (Link rel=next) repeats statuses of the first");

  step = "statuses.$select(id).context.fetch";
  let ctx;
  for (const end = Date.now() + 20_000; Date.now() < end; await sleep(500)) {
    ctx = await rest.v1.statuses.$select(posted.id).context.fetch();
    if (ctx.descendants.length >= 1) break;
  }
  check(ctx.descendants.length >= 1, "no reply in descendants within 20 s");
  check(ctx.descendants.every((s) => s.inReplyToId), "a descendant has no inReplyToId");

  step = "accounts.$select(id).fetch";
  const author = ctx.descendants[0].account;
  const acc = await rest.v1.accounts.$select(author.id).fetch();
  check(acc.acct && Number.isInteger(acc.followersCount) && Number.isInteger(acc.followingCount),
    `account lacks acct/followersCount/followingCount: ${JSON.stringify(acc).slice(0, 200)}`);

  step = `streaming (${streamingApiUrl}/api/v1/streaming, subscribe public)`;
  const streaming = createStreamingAPIClient({ streamingApiUrl, accessToken, retry: 3 });
  await streaming.prepare(); // resolves once the WebSocket is open
  const updates = [];
  const reader = (async () => {
    for await (const event of streaming.public.subscribe()) {
      if (event.event !== "update") continue;
      check(event.payload?.id && event.payload?.account?.acct && event.payload?.createdAt,
        `update payload lacks id/account.acct/createdAt: ${JSON.stringify(event).slice(0, 200)}`);
      updates.push(event.payload);
      if (updates.length >= 3) break;
    }
  })();
  await sleep(300); // the subscribe frame goes out when the loop starts; give the server a moment
  await rest.v1.statuses.create({ status: "Later: fans flood the streets of the old town after the cup final" });
  await Promise.race([reader, sleep(20_000)]);
  check(updates.length >= 3, `only ${updates.length} update events on the public stream in 20 s`);
  streaming.close();

  console.log(`masto_client: OK: ${ctx.descendants.length} replies, home ${first.length}+${second.length},` +
    ` ${updates.length} stream updates via ${streamingApiUrl}`);
}

main().then(() => process.exit(0), (e) =>
  fail(`${e?.constructor?.name}: ${e?.message}${e?.statusCode ? ` (HTTP ${e.statusCode})` : ""}`));
