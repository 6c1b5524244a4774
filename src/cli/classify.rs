//! `chorus classify`: one classification (or error record) per event line.

use super::common::*;
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct ClassifyArgs {
    /// Event file, one JSON event per line (`-` for standard input).
    #[arg(long)]
    pub(crate) events: PathBuf,
    /// World file (default: the shipped seeds/world.jsonl).
    #[arg(long)]
    pub(crate) world: Option<PathBuf>,
    /// Lexicon folder (default: the shipped templates/lexicon).
    #[arg(long)]
    pub(crate) lexicon: Option<PathBuf>,
    /// Lines carry a "label" with the expected classification: print an accuracy report to
    /// standard error.
    #[arg(long)]
    pub(crate) labels: bool,
}

pub(crate) fn run_classify(args: ClassifyArgs) -> Result<()> {
    use chorus::classify::{split_label, Accuracy, Classifier, Lexicon};
    use chorus::events::{parse_event, EventError};
    let world = load_world(args.world.as_deref())?;
    let lexicon = match &args.lexicon {
        Some(dir) => Lexicon::load(dir)?,
        None => Lexicon::embedded()?,
    };
    let classifier = Classifier::new(lexicon, &world);
    let bytes = read_input(&args.events)?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let (mut ok, mut failed, mut scored) = (0usize, 0usize, Vec::new());
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let result = match std::str::from_utf8(raw) {
            Err(e) => Err(EventError {
                line,
                id: None,
                field: "-".into(),
                error: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            }),
            Ok(text) if text.trim().is_empty() || text.trim_start().starts_with('#') => continue,
            Ok(text) => {
                let split = if args.labels {
                    split_label(text.trim()).map_err(|error| EventError {
                        line,
                        id: None,
                        field: "label".into(),
                        error,
                    })
                } else {
                    Ok((text.trim().to_string(), None))
                };
                split.and_then(|(json, label)| {
                    parse_event(line, &json).and_then(|event| classifier.classify(&event, line)).map(|c| (c, label))
                })
            }
        };
        match result {
            Ok((c, label)) => {
                ok += 1;
                serde_json::to_writer(&mut w, &c)?;
                if let Some(l) = label {
                    scored.push((c, l));
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("chorus: {}: {e}", args.events.display());
                serde_json::to_writer(&mut w, &e)?;
            }
        }
        writeln!(w)?;
    }
    w.flush()?;
    if args.labels {
        eprint!("{}", Accuracy::score(&world, &scored));
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} events could not be classified (error records above)", ok + failed);
    }
    Ok(())
}
