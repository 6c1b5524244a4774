//! `chorus budget`: what each token budget buys on an event script.

use super::common::*;
use super::llm::*;
use super::meter::*;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct BudgetArgs {
    /// Event file, one JSON event per line (`-` for standard input).
    #[arg(long)]
    pub(crate) events: PathBuf,
    /// Number of users to generate (ignored with --load).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) users: u32,
    /// Master seed (ignored with --load).
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Start from a saved population snapshot instead of generating one.
    #[arg(long)]
    pub(crate) load: Option<PathBuf>,
    /// Budgets to compare, tokens per game day, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,2000,5000,10000,50000")]
    pub(crate) budgets: Vec<u64>,
    /// Price per million tokens, for the cost column.
    #[arg(long, default_value_t = 0.10)]
    pub(crate) price_per_million: f64,
    /// Write the table here as well (Markdown).
    #[arg(long)]
    pub(crate) table: Option<PathBuf>,
    /// Write an SVG plot of post sources and tokens against the budget.
    #[arg(long)]
    pub(crate) plot: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) llm: LlmArgs,
}

pub(crate) fn run_budget(args: BudgetArgs) -> Result<()> {
    use chorus::events::parse_events_numbered;
    use chorus::timeline::Source;
    if !args.llm.enabled() {
        anyhow::bail!("chorus budget needs --llm URL or --replay FILE");
    }
    let meter = StageMeter::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let population = run_population_for(args.load.as_deref(), args.users, args.seed, &meter)?;
    let bytes = read_input(&args.events)?;
    let run = chorus::llm::client::RunMeta {
        seed: population.config().seed,
        users: population.len() as u64,
        events: chorus::llm::client::RunMeta::digest(&bytes),
        budget: args.budgets.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        ..Default::default()
    };
    let (base, transport) = args.llm.resolve(run, None)?;
    let mut sim = chorus::sim::Simulation::new(population, Default::default())?;
    sim.keep_feed(false);
    let router = chorus::llm::route::Router::new(sim.pipeline().population(), base.routing.clone());
    let parsed = parse_events_numbered(&bytes);
    meter.begin("events", parsed.len() as u64);
    let EventsRun { posts, failed, items, banks, .. } =
        run_events(&mut sim, parsed, 0, Some(&router), Some(&base.banks), None, &args.events, &meter);
    meter.finish();
    let text_posts = posts.iter().filter(|p| p.text.is_some()).count().max(1);
    let mut rows = Vec::new();
    for &b in &args.budgets {
        let mut config = base.clone();
        config.budget.per_day = b;
        let gate = chorus::llm::gate::Gate::embedded(sim.pipeline().classifier().clone())?;
        let llm = chorus::llm::Llm::new(config, Box::new(SharedTransport(transport.clone())))?.with_gate(gate);
        let outcomes =
            llm.resolve_all(items.clone(), banks.clone(), sim.pipeline().population(), sim.pipeline().templates());
        let count = |s: Source| outcomes.iter().filter(|o| o.source == s).count();
        let (l, c, k) = (count(Source::Llm), count(Source::Cache), count(Source::Bank));
        let r = llm.report();
        rows.push(BudgetRow {
            budget: b,
            tokens: r.budget.spent,
            total: r.budget.spent_total,
            llm: l as f64 / text_posts as f64,
            cache: c as f64 / text_posts as f64,
            template: (text_posts - l - c - k) as f64 / text_posts as f64,
            bank: k as f64 / text_posts as f64,
            bank_posts_per_kilotoken: r.banks.posts_per_kilotoken(),
            spent_share: if r.budget.days > 0 && b > 0 {
                r.budget.spent_total as f64 / (b as f64 * r.budget.days as f64)
            } else {
                0.0
            },
            overruns: r.budget.overruns,
            gate_refused: r.gate.refused(),
            ledger: r.ledger.clone(),
            fallbacks: r.budget.fallbacks.iter().sum(),
            wait_p50_ms: r.queue_wait_ms.p50,
            wait_p99_ms: r.queue_wait_ms.p99,
            cost: r.budget.spent_total as f64 * args.price_per_million / 1e6,
            llm_by_priority: r.llm,
            borrowed: r.budget.borrowed,
        });
        eprintln!("budget {b}: done ({} requests)", r.requests);
    }
    check_replayed(transport.as_ref(), args.llm.replay.as_deref())?;
    let table = budget_table(&rows, text_posts, items.len(), args.price_per_million);
    print!("{table}");
    if let Some(p) = &args.table {
        std::fs::write(p, &table).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.plot {
        std::fs::write(p, budget_svg(&rows)).with_context(|| format!("writing {}", p.display()))?;
    }
    if failed > 0 {
        anyhow::bail!("{failed} events were rejected (see the messages above)");
    }
    Ok(())
}

/// One budget's results.
pub(crate) struct BudgetRow {
    pub(crate) budget: u64,
    pub(crate) tokens: [u64; 4],
    pub(crate) total: u64,
    pub(crate) llm: f64,
    pub(crate) cache: f64,
    pub(crate) template: f64,
    pub(crate) fallbacks: u64,
    pub(crate) wait_p50_ms: f64,
    pub(crate) wait_p99_ms: f64,
    pub(crate) cost: f64,
    /// LLM posts by priority (high, medium, low).
    pub(crate) llm_by_priority: [u64; 3],
    pub(crate) borrowed: u64,
    /// Share of text posts around a phrase-bank line.
    pub(crate) bank: f64,
    /// Bank posts per 1,000 tokens the banks spent.
    pub(crate) bank_posts_per_kilotoken: f64,
    /// Tokens spent over the budget of the days that saw requests.
    pub(crate) spent_share: f64,
    /// Tokens the server reported beyond a reservation.
    pub(crate) overruns: u64,
    /// LLM lines the gate refused.
    pub(crate) gate_refused: u64,
    /// Planned and spent tokens per (event, kind).
    pub(crate) ledger: Vec<chorus::llm::LedgerRow>,
}

pub(crate) fn budget_table(rows: &[BudgetRow], posts: usize, routed: usize, price: f64) -> String {
    let mut t = format!(
        "{posts} posts with text, {routed} routed to the LLM stage; cost at ${price} per million tokens\n\n\
         | budget/day | tokens | spent % | overrun | reply | quote | post | media | llm % | bank % | bank posts/1k tok | cache % | template % | fallbacks | gate refused | wait p50 ms | wait p99 ms | cost $ | llm high/medium/low | borrowed |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        t.push_str(&format!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {} | {} | {:.1} | {:.1} | {:.4} | {}/{}/{} | {} |\n",
            r.budget,
            r.total,
            r.spent_share * 100.0,
            r.overruns,
            r.tokens[0],
            r.tokens[1],
            r.tokens[2],
            r.tokens[3],
            r.llm * 100.0,
            r.bank * 100.0,
            r.bank_posts_per_kilotoken,
            r.cache * 100.0,
            r.template * 100.0,
            r.fallbacks,
            r.gate_refused,
            r.wait_p50_ms,
            r.wait_p99_ms,
            r.cost,
            r.llm_by_priority[0],
            r.llm_by_priority[1],
            r.llm_by_priority[2],
            r.borrowed
        ));
    }
    // Planned (reserved before sending) and spent (the server's usage) tokens, per kind of
    // request, then per event.
    for r in rows.iter().filter(|r| !r.ledger.is_empty()) {
        let add = |l: &mut chorus::llm::Ledger, x: &chorus::llm::Ledger| {
            l.requests += x.requests;
            l.planned += x.planned;
            l.spent += x.spent;
        };
        let mut kinds: std::collections::BTreeMap<&str, chorus::llm::Ledger> = Default::default();
        for row in &r.ledger {
            add(kinds.entry(row.kind.as_str()).or_default(), &row.ledger);
        }
        t.push_str(&format!(
            "\nBudget {}: planned vs spent tokens by kind\n\n| kind | requests | planned | spent |\n|---|---:|---:|---:|\n",
            r.budget
        ));
        for (k, l) in &kinds {
            t.push_str(&format!("| {k} | {} | {} | {} |\n", l.requests, l.planned, l.spent));
        }
        t.push_str(&format!(
            "\nBudget {}: planned vs spent tokens by event\n\n| event | requests | planned | spent | kinds |\n|---|---:|---:|---:|---|\n",
            r.budget
        ));
        // The ledger is ordered by (event, kind): an event's rows are next to each other.
        for rows in r.ledger.chunk_by(|a, b| a.event == b.event) {
            let mut l = chorus::llm::Ledger::default();
            rows.iter().for_each(|x| add(&mut l, &x.ledger));
            let ks: Vec<&str> = rows.iter().map(|x| x.kind.as_str()).collect();
            t.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                rows[0].event,
                l.requests,
                l.planned,
                l.spent,
                ks.join(", ")
            ));
        }
    }
    t
}

/// A hand-written SVG: shares of LLM and cache posts (left axis, %) and tokens spent (right
/// axis) against the budget.
pub(crate) fn budget_svg(rows: &[BudgetRow]) -> String {
    let (w, h, l, r, top, bottom) = (720.0, 420.0, 70.0, 90.0, 40.0, 60.0);
    let pw = w - l - r;
    let ph = h - top - bottom;
    let n = rows.len().max(2) as f64 - 1.0;
    let x = |i: usize| l + pw * i as f64 / n;
    let max_share = rows.iter().map(|r| r.llm + r.cache).fold(0.0f64, f64::max).max(0.001) * 100.0;
    let max_tok = rows.iter().map(|r| r.total).max().unwrap_or(0).max(1) as f64;
    let ys = |v: f64| top + ph * (1.0 - v / max_share);
    let yt = |v: f64| top + ph * (1.0 - v / max_tok);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">What a token budget buys</text>\n\
         <line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{l}\" y1=\"{top}\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{}\" y1=\"{top}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        w / 2.0,
        top + ph,
        l + pw,
        top + ph,
        top + ph,
        l + pw,
        l + pw,
        top + ph
    );
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.2}%</text>\n<text x=\"{}\" y=\"{:.1}\">{:.0}</text>\n",
            l - 6.0,
            top + ph * (1.0 - f) + 4.0,
            max_share * f,
            l + pw + 6.0,
            top + ph * (1.0 - f) + 4.0,
            max_tok * f
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            x(i),
            top + ph + 18.0,
            row.budget
        ));
    }
    let line = |pts: Vec<(f64, f64)>, colour: &str| {
        let p: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        format!("<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n", p.join(" "))
    };
    s.push_str(&line(rows.iter().enumerate().map(|(i, r)| (x(i), ys(r.llm * 100.0))).collect(), "#d62728"));
    s.push_str(&line(rows.iter().enumerate().map(|(i, r)| (x(i), ys((r.llm + r.cache) * 100.0))).collect(), "#1f77b4"));
    s.push_str(&line(rows.iter().enumerate().map(|(i, r)| (x(i), yt(r.total as f64))).collect(), "#7f7f7f"));
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">token budget per game day</text>\n\
         <text x=\"{l}\" y=\"{}\" fill=\"#d62728\">LLM posts (% of all)</text>\n\
         <text x=\"{}\" y=\"{}\" fill=\"#1f77b4\">LLM + cache (%)</text>\n\
         <text x=\"{}\" y=\"{}\" fill=\"#7f7f7f\">tokens spent (right axis)</text>\n</svg>\n",
        l + pw / 2.0,
        h - 18.0,
        h - 4.0,
        l + 190.0,
        h - 4.0,
        l + 360.0,
        h - 4.0
    ));
    s
}
