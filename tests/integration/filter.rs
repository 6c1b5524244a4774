//! Filtering: who reacts to an event, and from which side.

use crate::common::{pop_20k, world};
use chorus::classify::Classifier;
use chorus::events::{parse_event, GameEvent};
use chorus::filter::{filter, AudienceIndex, FilterConfig, Reaction};
use chorus::state::{StateConfig, UserState};
use chorus::world::NO_ENTITY;

fn event(json: &str) -> GameEvent {
    parse_event(1, json).unwrap()
}

fn run(e: &GameEvent, state: Option<&UserState>) -> Vec<Reaction> {
    let p = pop_20k();
    let config = FilterConfig::default();
    let index = AudienceIndex::new(p, &config);
    let k = Classifier::embedded(world()).unwrap().classify(e, 1).unwrap();
    filter(p, &index, &config, &k, e.time, state)
}

const WIN: &str = r#"{"id": "final", "time": 72000, "text": "The Harbor City Redhawks win the championship final in a thrilling overtime victory"}"#;

#[test]
fn fans_cheer_their_team_and_rival_fans_do_not() {
    let p = pop_20k();
    let w = p.world();
    let redhawks = w.find("redhawks").unwrap();
    let rivals = w.rivals(redhawks).to_vec();
    let reactions = run(&event(WIN), None);
    assert!(reactions.len() > 50, "too few reactions to judge: {}", reactions.len());
    let (mut fans, mut fans_pos, mut foes, mut foes_neg) = (0, 0, 0, 0);
    for r in &reactions {
        let team = p.columns().affiliations[r.user.index()].team;
        if team == redhawks {
            fans += 1;
            fans_pos += (r.stance > 0) as usize;
        } else if team != NO_ENTITY && rivals.contains(&team) {
            foes += 1;
            foes_neg += (r.stance < 0) as usize;
        }
    }
    assert!(fans >= 10 && foes >= 3, "fans {fans}, rival fans {foes}");
    assert_eq!(fans_pos, fans, "every Redhawks fan sees the win as good news");
    assert_eq!(foes_neg, foes, "every rival fan sees it as bad news");
    // Fans react far more often than the average sports follower.
    let fan_share = fans as f64 / p.columns().affiliations.iter().filter(|a| a.team == redhawks).count() as f64;
    let overall = reactions.len() as f64 / p.len() as f64;
    assert!(fan_share > 3.0 * overall, "fan share {fan_share:.3} vs overall {overall:.3}");
}

#[test]
fn results_are_identical_for_any_thread_count_and_sorted() {
    let e = event(WIN);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| run(&e, None));
    let four = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap().install(|| run(&e, None));
    assert_eq!(one, four);
    assert!(one.windows(2).all(|w| w[0].user < w[1].user), "ordered by user, no duplicates");
}

#[test]
fn cooldown_lowers_repeat_reactions_and_niche_events_reach_few() {
    let e = event(WIN);
    let first = run(&e, None);
    let mut cd = UserState::new(pop_20k().len(), StateConfig::default()).unwrap();
    cd.mark_active(first.iter().map(|r| r.user), e.time);
    let again = event(&WIN.replace("\"final\"", "\"final-2\"").replace("72000", "72600"));
    let fresh = run(&again, None);
    let cooled = run(&again, Some(&cd));
    // Repeats among the users the cap did not hold (a prolific user's probability can be
    // well over 1 before the cap, so a 0.3 factor leaves it capped).
    let unsaturated: Vec<u32> = first.iter().filter(|r| r.engagement < 240).map(|r| r.user.0).collect();
    let repeat = |rs: &[Reaction]| rs.iter().filter(|r| unsaturated.binary_search(&r.user.0).is_ok()).count();
    assert!(repeat(&cooled) * 2 < repeat(&fresh).max(1), "cooled {} vs fresh {}", repeat(&cooled), repeat(&fresh));
    let niche = run(
        &event(r#"{"id": "n", "time": 30000, "text": "New telescope images reveal a distant galaxy cluster"}"#),
        None,
    );
    assert!(niche.len() * 5 < first.len(), "niche {} vs broad {}", niche.len(), first.len());
}
