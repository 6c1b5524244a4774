//! Actions: what each reacting user does about an event (like, repost, post, reply, quote),
//! when (a heavy-tailed delay), and in which thread, turned into timeline [`Post`]s with
//! template text.
//!
//! A reacting user's action is drawn from their propensities. Most engagement is likes and
//! reposts; the text actions (post, reply, quote, GIF) weigh `0.02 * (ppd / 1.5)^2` more, so
//! prolific users write and quiet ones mostly like, and prolific users take follow-up actions
//! in the event's threads ([`ActionConfig::follow_ups`]). Delays are log-normal (median 8
//! minutes, about 95% within the hour), at most `attention_per_hour` of one user's in each
//! simulated hour. Replies, quotes, likes and reposts go to a strong relationship's post when
//! there is one, else to one post of the user's home feed (followed authors' roots and a few "for you"
//! roots, ranked by appeal × recency; see [`ActionConfig::in_network`]). Replies may answer
//! earlier replies, up to depth 5, and a hostile reply may draw a retort from the author it
//! answers ([`ActionConfig::retort`]). If nobody chose to post, the most engaged reactor
//! posts, so every reaction has something to attach to.
//!
//! Invariant: the posts for an event are a pure function of (population, templates, event,
//! reactions); children come after their parents in game time.

use crate::classify::Classification;
use crate::events::{GameEvent, Valence};
use crate::filter::{event_key, Reaction};
use crate::frame::RoleName;
use crate::ids::UserId;
use crate::media::{GifMemory, GifMood, Media, Picture};
use crate::population::columns::dq8;
use crate::population::Population;
use crate::prefetch::load_together;
use crate::rng::Stream;
use crate::state::relations::drifted;
use crate::state::{minute_of, UserState};
use crate::templates::{Action, Facts, PostContext, Sentiment, Stance, Templates};
use crate::timeline::{Post, PostId, PostKind, Source};
use rayon::prelude::*;

/// Domain tag of action decisions.
const ACT: u64 = 0x6163_7431;
/// Domain tag of GIF and picture choices.
const MEDIA: u64 = 0x6d65_6469;
/// Domain tag of retorts (a post's author answering a hostile reply).
const RETORT: u64 = 0x7265_7472;
/// A retort's action number starts here (above every follow-up's), so its text is drawn
/// apart from the author's other actions on the event.
const RETORT_SEQ: u16 = 64;

/// What pass 2 fills in for one post.
#[derive(Default)]
struct Fill {
    text: Option<String>,
    gif: Option<u16>,
    picture: Option<(Option<String>, Option<String>)>,
}

/// Tunable shape of reactions.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionConfig {
    /// Median delay after the event, in minutes (default 8).
    pub delay_median_minutes: f32,
    /// Log-normal spread of delays (default 1.0).
    pub delay_sigma: f32,
    /// Deepest reply (default 5).
    pub max_depth: u8,
    /// Chance that a reply answers an earlier reply rather than a post (default 0.35).
    pub reply_to_reply: f32,
    /// How much more a root by someone the user follows weighs in their home feed than a
    /// "for you" root (default 3; see [`act`]'s exposure rule).
    pub in_network: f32,
    /// Recency scale of the home feed's ranking, in minutes (default 360, the 6 hours of
    /// [`crate::sim::Feed::home`]): a root `age` old weighs `exp(−age / recency)`, and one
    /// posted after the action, not yet seen, `exp(−wait / 30 min)` (the user waits for it).
    pub recency_minutes: f32,
    /// Most actions one user takes on an event in each simulated hour counted from their
    /// first (default 12): the k-th comes no earlier than hour `k / 12`, so further follow-ups
    /// wait for the next hour. Attention is per user, so it does not scale with the population.
    pub attention_per_hour: u8,
    /// Exponent of the author's follower count in the out-of-network draw (default 0: big
    /// accounts already draw more through the in-network share, since more reactors follow
    /// them; a positive exponent concentrates attention more, and more at larger populations,
    /// whose largest accounts are larger).
    pub attention: f32,
    /// "For you" roots in a user's home feed (default 10, at most 64): distinct roots drawn at
    /// random from the event's (all of them when there are fewer: the other slots show other
    /// posts, and a draw landing there goes to the event's top root), beside the roots of whom
    /// they follow. A fixed feed, not the population, sets how attention concentrates, so the
    /// share of posts without reaction and the cascade sizes are the same at 100k and 1M users
    /// (within 4%; at 10k within 10% but for the 1-reaction bin, see `docs/BEHAVIOUR.md`).
    pub feed: u8,
    /// Log-normal spread of a post's own appeal in the popularity draw (default 3): most
    /// posts draw nothing, a few draw most reactions, by a law that does not depend on the
    /// population's size (unlike the follower counts, whose largest grow with it).
    pub virality: f32,
    /// Chance that a reaction goes to a post by someone the user has a strong relationship
    /// with (|weight| ≥ 0.3), when they posted about the event (default 0.6).
    pub relationship_pull: f32,
    /// Chance that a post recalls a relevant reflection of its author (default 0.2).
    pub recall: f32,
    /// Weight of a GIF reply against the other actions, times the user's GIF propensity
    /// (default 0.6).
    pub gif_weight: f32,
    /// Chance that a GIF reply carries a short caption (default 0.3).
    pub gif_caption: f32,
    /// Chance that a post carries a picture, times the user's multimedia propensity
    /// (default 0.5).
    pub image_rate: f32,
    /// The text actions' weights are multiplied by `voice_scale * (ppd / 1.5)^voice`
    /// (defaults 0.02 and 2: a user posting 50 a day mostly writes, the median user mostly
    /// likes; scale 1 and exponent 0 give everyone their propensities' own mix).
    pub voice_scale: f32,
    /// See `voice_scale`.
    pub voice: f32,
    /// Follow-up actions per reaction, times `(ppd / 1.5)^1.6` (default 0.015): a reacting
    /// user takes a Poisson number of further actions in the event's threads (replies,
    /// quotes, likes, as their weights say, to others' posts), each a third of a burst delay
    /// after the one before. A user posting 220 a day takes up to `max_follow_ups`, one
    /// posting 50 about 4, one posting 6 one in ten, the median user hardly ever.
    pub follow_ups: f32,
    /// Most follow-up actions per reaction (default 32).
    pub max_follow_ups: u8,
    /// Chance that the author of a post answers a hostile reply to it (one whose sentiment
    /// opposes the post), times `1.5 − agreeableness` (default 0.3). The replier may answer
    /// back in turn, by the same rule, until the thread reaches `max_depth`: arguments, which
    /// repeated across events make feuds (see [`crate::state::relations`]).
    pub retort: f32,
}

impl Default for ActionConfig {
    fn default() -> Self {
        ActionConfig {
            delay_median_minutes: 8.0,
            delay_sigma: 1.0,
            max_depth: 5,
            reply_to_reply: 0.35,
            in_network: 3.0,
            recency_minutes: 360.0,
            attention_per_hour: 12,
            attention: 0.0,
            virality: 3.0,
            feed: 10,
            relationship_pull: 0.6,
            recall: 0.2,
            gif_weight: 0.6,
            gif_caption: 0.3,
            image_rate: 0.5,
            voice_scale: 0.02,
            voice: 2.0,
            follow_ups: 0.015,
            max_follow_ups: 32,
            retort: 0.3,
        }
    }
}

/// How users name the event's main stakeholder, a hashtag for it, a short summary, and the
/// frame's facts.
pub struct Names {
    /// "the Redhawks", "Mayor Delgado"...; without a stakeholder the frame's main role
    /// ("Argentina"), else the kind's noun ("the layoffs"), else "this".
    pub subject: String,
    /// "#Redhawks".
    pub hashtag: String,
    /// The event text, cut to about 120 characters.
    pub what: String,
    /// The frame's facts as users name them.
    pub facts: Facts,
    /// The stakeholders with their sides ([`Classification::stakes`]), for telling a fan from
    /// an onlooker.
    pub sides: Vec<(crate::world::EntityIdx, i8)>,
}

/// Derives the names templates need from an event and its classification.
pub fn names(population: &Population, event: &GameEvent, class: &Classification) -> Names {
    let world = population.world();
    let frame = &class.frame;
    let role_name = |r: RoleName| -> Option<String> {
        frame.role(r).map(|role| match role.entity {
            Some(e) => world.display_name(e),
            None => role.text.clone(),
        })
    };
    let mut facts = Facts { slots: frame.slots(), grave: frame.kind.is_grave(), ..Facts::default() };
    if frame.kind.index > 0 {
        facts.kind = Some(frame.kind);
    }
    for r in RoleName::ALL {
        if let Some(v) = role_name(r) {
            facts.values[r as usize] = v;
        }
    }
    if let Some(score) = &frame.score {
        facts.values[6] = score.clone();
    }
    if let Some(n) = frame.main_number() {
        facts.values[7] = n.text.clone();
    }
    let sides = class.stakes(world).collect();
    let main_role =
        [RoleName::Winner, RoleName::Actor, RoleName::Person, RoleName::Target, RoleName::Loser, RoleName::Place]
            .into_iter()
            .find_map(role_name);
    let subject = class
        .stakeholders
        .first()
        .and_then(|id| world.find(id))
        .map(|e| world.display_name(e))
        .or(main_role)
        .or_else(|| (!frame.noun.is_empty()).then(|| frame.noun.clone()))
        .unwrap_or_else(|| "this".to_string());
    let tag_src = if subject == "this" { class.category.name().to_string() } else { subject.clone() };
    let mut hashtag = String::from("#");
    for w in tag_src.split_whitespace().filter(|w| !w.eq_ignore_ascii_case("the")) {
        let mut c = w.chars().filter(|c| c.is_alphanumeric());
        if let Some(f) = c.next() {
            hashtag.extend(f.to_uppercase());
            hashtag.extend(c);
        }
    }
    let mut what = event.text.trim().trim_end_matches(['.', '!']).to_string();
    if what.chars().count() > 120 {
        let cut: String = what.chars().take(120).collect();
        what = match cut.rfind(' ') {
            Some(p) => cut[..p].to_string(),
            None => cut,
        };
    }
    Names { subject, hashtag, what, facts, sides }
}

/// Whether `user` supports a side of the event that feels it as `sentiment`: a fan, party
/// member, admirer or resident of a frame entity whose fans see the event that way.
fn is_fan(population: &Population, names: &Names, valence: Valence, user: UserId, sentiment: Sentiment) -> bool {
    if names.sides.is_empty() || sentiment == Sentiment::Neutral {
        return false;
    }
    names
        .sides
        .iter()
        .any(|&(e, side)| side as f32 * valence.sign() == sentiment.sign() as f32 && population.supports(user, e))
}

/// Each author's first root post of the event: a bit per user answers "none" (the common
/// case when scanning whom someone follows) without hashing.
struct RootsByAuthor {
    bits: Vec<u64>,
    first: crate::state::IdMap<usize>,
}

impl RootsByAuthor {
    fn new(users: usize) -> RootsByAuthor {
        RootsByAuthor { bits: vec![0; users.div_ceil(64)], first: Default::default() }
    }

    /// Records `index` as `author`'s root post unless they already have one.
    fn insert(&mut self, author: u32, index: usize) {
        if let Some(w) = self.bits.get_mut(author as usize / 64) {
            *w |= 1 << (author % 64);
        }
        self.first.entry(author).or_insert(index);
    }

    #[inline]
    fn get(&self, author: u32) -> Option<usize> {
        let w = *self.bits.get(author as usize / 64)?;
        if w & (1 << (author % 64)) == 0 {
            return None;
        }
        self.first.get(&author).copied()
    }
}

/// Which root posts each reactor follows the author of, found from the roots' side: the
/// followers of every root author, kept where they react. Cheaper than scanning every
/// reactor's followings when the root authors have fewer followers in all than the reactors
/// follow (about 6× fewer over the demo). Users whose follows the state changed are looked up
/// from their side as before.
struct FollowedRoots {
    /// (reactor, root index), sorted: per reactor, in the order of their followings.
    pairs: Vec<(u32, u32)>,
}

impl FollowedRoots {
    /// `None` when scanning the reactors' followings is cheaper.
    fn new(
        population: &Population,
        roots: &RootsByAuthor,
        reactors: &[Choice],
        force: Option<bool>,
    ) -> Option<FollowedRoots> {
        let graph = population.graph();
        let followers: u64 = roots.first.keys().map(|&a| graph.in_degree(UserId(a)) as u64).sum();
        let followings: u64 = reactors.iter().map(|c| graph.out_degree(UserId(c.user)) as u64).sum();
        if !force.unwrap_or(followers < followings) {
            return None;
        }
        let mut authors: Vec<(u32, usize)> = roots.first.iter().map(|(&a, &k)| (a, k)).collect();
        authors.sort_unstable();
        let mut reacting = vec![0u64; population.len().div_ceil(64)];
        for c in reactors {
            if let Some(w) = reacting.get_mut(c.user as usize / 64) {
                *w |= 1 << (c.user % 64);
            }
        }
        let reacts = |v: u32| reacting.get(v as usize / 64).is_some_and(|w| w & (1 << (v % 64)) != 0);
        // Root authors in id order, so each reactor's roots come in the order of their
        // (sorted) followings; the stable sort by reactor keeps it.
        let mut pairs: Vec<(u32, u32)> = authors
            .par_iter()
            .flat_map_iter(|&(a, k)| {
                graph.followers(UserId(a)).iter().filter(|&&v| reacts(v)).map(move |&v| (v, k as u32))
            })
            .collect();
        pairs.sort_by_key(|p| p.0);
        Some(FollowedRoots { pairs })
    }

    /// The root indices `user` follows the author of, into `out`.
    fn get(&self, user: u32, out: &mut Vec<usize>) {
        let from = self.pairs.partition_point(|p| p.0 < user);
        out.extend(self.pairs[from..].iter().take_while(|p| p.0 == user).map(|p| p.1 as usize));
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: Some(true) finds followed roots from the roots' side, Some(false) from the
    /// reactors', whatever is cheaper.
    static FORCE_SIDE: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// The side [`FollowedRoots::new`] must take (tests), or `None` to pick the cheaper one.
fn forced_side() -> Option<bool> {
    #[cfg(test)]
    return FORCE_SIDE.with(|f| f.get());
    #[cfg(not(test))]
    None
}

/// Where one reaction goes, before replies to replies are drawn (with the stream to draw
/// them from).
struct Pick {
    target: usize,
    related: bool,
    sentiment: Sentiment,
    rng: Stream,
}

#[derive(Clone, Copy)]
struct Choice {
    user: u32,
    /// 0 for the reaction itself, 1.. for its follow-ups.
    seq: u8,
    kind: PostKind,
    delay: i64,
    sentiment: Sentiment,
    engagement: u8,
}

/// The random-stream key of a user's `seq`-th action on an event (the user id for the first).
fn who(user: u32, seq: u16) -> u64 {
    user as u64 | (seq as u64) << 48
}

/// Action kinds in the order of the weights of [`act`].
const KINDS: [PostKind; 6] =
    [PostKind::Like, PostKind::Repost, PostKind::Post, PostKind::Reply, PostKind::Quote, PostKind::Gif];

/// Turns the reactions to one event into posts. `event_index` makes post ids unique in a run.
#[allow(clippy::too_many_arguments)]
pub fn act(
    population: &Population,
    templates: &Templates,
    media: &Media,
    gif_memory: &GifMemory,
    config: &ActionConfig,
    event: &GameEvent,
    class: &Classification,
    event_index: u32,
    reactions: &[Reaction],
    state: Option<&UserState>,
) -> Vec<Post> {
    let master = population.config().seed;
    let key = event_key(&event.id);
    let cols = population.columns();
    let minute = minute_of(event.time);
    let mu = (config.delay_median_minutes.max(0.1) as f64 * 60.0).ln();
    let voices: [f32; 256] = std::array::from_fn(|code| {
        config.voice_scale.max(0.0)
            * (crate::population::columns::decode_ppd(code as u8) / 1.5).powf(config.voice).clamp(0.02, 400.0)
    });
    let voices = &voices;
    let follow_ups: [f32; 256] = std::array::from_fn(|code| {
        config.follow_ups.max(0.0) * (crate::population::columns::decode_ppd(code as u8) / 1.5).powf(1.6)
    });
    let follow_ups = &follow_ups;
    let mut choices: Vec<Choice> = reactions
        .par_chunks(32)
        .flat_map_iter(|batch| {
            // The scattered lines each choice reads (activity; with state, the mood's cell,
            // persona and town), loaded together.
            load_together(batch.iter().map(|r| {
                let mood = state.map_or(0, |st| st.mood_lines(population, r.user.0));
                cols.activity[r.user.index()].like as u32 ^ mood
            }));
            batch.iter().flat_map(move |r| {
                let mut rng = Stream::new(master, ACT, key, r.user.0 as u64);
                let a = &cols.activity[r.user.index()];
                let engaged = r.engagement as f64 / 255.0;
                let voice = voices[a.posts_per_day as usize] as f64;
                let mut w = [
                    3.0 * dq8(a.like) as f64,
                    1.5 * dq8(a.repost) as f64,
                    0.25 + engaged,
                    dq8(a.reply) as f64,
                    0.6 * dq8(a.quote) as f64,
                    config.gif_weight as f64 * dq8(a.gif) as f64,
                ];
                w[2..].iter_mut().for_each(|x| *x *= voice);
                // Mood: the bored scroll and like, the angry reply and quote, the tired post less;
                // and a mood tints how they take a neutral-ish event.
                let mut stance = r.stance;
                if let Some(st) = state {
                    let m = st.mood(population, r.user.0, minute);
                    let (bored, angry) = (m.boredom() as f64, m.anger() as f64);
                    w[0] *= 1.0 + 0.8 * bored;
                    w[1] *= 1.0 + 0.4 * bored;
                    w[2] *= 0.5 + 0.5 * m.energy as f64;
                    w[3] *= 1.0 + 1.5 * angry;
                    w[4] *= 1.0 + 1.5 * angry;
                    stance = (stance as f32 + m.valence * 40.0).clamp(-127.0, 127.0) as i8;
                }
                let draw = |w: &[f64; 6], rng: &mut Stream| {
                    let total: f64 = w.iter().sum();
                    let mut x = rng.f64() * total;
                    let mut k = 0;
                    while k < 5 && x >= w[k] {
                        x -= w[k];
                        k += 1;
                    }
                    KINDS[k]
                };
                let kind = draw(&w, &mut rng);
                let burst = |rng: &mut Stream| (mu + config.delay_sigma as f64 * rng.normal()).exp();
                let delay = burst(&mut rng).clamp(5.0, 7.0 * 86_400.0) as i64;
                let sentiment = Sentiment::from_stance(stance);
                let first = Choice { user: r.user.0, seq: 0, kind, delay, sentiment, engagement: r.engagement };
                // Follow-ups: further actions in the event's threads, each a burst delay after
                // the one before (a Poisson count by inversion).
                let lambda = follow_ups[a.posts_per_day as usize] as f64;
                let mut more: Vec<Choice> = Vec::new();
                if lambda > 0.0 {
                    let (mut x, mut term) = (rng.f64(), (-lambda).exp());
                    let mut n = 0u8;
                    while n < config.max_follow_ups && x >= term {
                        x -= term;
                        n += 1;
                        term *= lambda / n as f64;
                    }
                    w[2] = 0.0;
                    let mut at = delay;
                    let budget = config.attention_per_hour.max(1) as i64;
                    for seq in 1..=n {
                        at = (at as f64 + burst(&mut rng) / 3.0).min(7.0 * 86_400.0) as i64;
                        // The hour's attention spent: wait for the next hour.
                        at = at.max(delay + seq as i64 / budget * 3600);
                        more.push(Choice { seq, kind: draw(&w, &mut rng), delay: at, ..first });
                    }
                }
                std::iter::once(first).chain(more)
            })
        })
        .collect();
    if !choices.is_empty() && !choices.iter().any(|c| c.kind == PostKind::Post) {
        let best = (0..choices.len()).max_by_key(|&i| (choices[i].engagement, std::cmp::Reverse(choices[i].user)));
        if let Some(i) = best {
            choices[i].kind = PostKind::Post;
        }
    }
    // Roots first (in time order), then everything else in time order, so parents exist.
    choices.sort_by_key(|c| (c.kind != PostKind::Post, c.delay, c.user));
    let names = names(population, event, class);
    // What a recalled memory may name besides the author's own (see the fill below).
    let nameable = &crate::check::event_entities(population, class);
    let subject: Option<u32> = class.stakeholders.first().and_then(|id| population.world().find(id)).map(|e| e as u32);
    let base = (event_index as u64) << 32;
    let mut posts: Vec<Post> = Vec::with_capacity(choices.len());
    let mut root_by_author = RootsByAuthor::new(population.len());
    let mut roots: Vec<usize> = Vec::new();
    let mut root_w: Vec<f64> = Vec::new();
    let mut replies: Vec<usize> = Vec::new();
    let mut targets: Vec<Option<usize>> = Vec::with_capacity(choices.len());
    // Per post: the author's action number for the event (0: the reaction, 1..: follow-ups).
    let mut seqs: Vec<u16> = Vec::with_capacity(choices.len());
    let post = |c: &Choice, kind: PostKind, sentiment: Sentiment, time: i64, index: usize| Post {
        id: PostId(base | index as u64),
        author: UserId(c.user),
        handle: String::new(),
        kind,
        parent: None,
        quoted: None,
        root: None,
        depth: 0,
        text: None,
        gif: None,
        image: None,
        image_request: None,
        event: event.id.clone(),
        time: crate::events::GameTime(time),
        sentiment,
        source: Source::Template,
    };
    // Pass 1a: the root posts (they sort first; there is at least one, see above).
    let n_roots = choices.iter().take_while(|c| c.kind == PostKind::Post).count();
    for c in &choices[..n_roots] {
        let index = posts.len();
        posts.push(post(c, PostKind::Post, c.sentiment, event.time.0 + c.delay, index));
        targets.push(None);
        seqs.push(c.seq as u16);
        root_by_author.insert(c.user, index);
        roots.push(index);
        // Attention is heavy-tailed: popular authors' posts draw more reactions, and a post's
        // own appeal (log-normal, the same law at any population size) picks the few that
        // take off.
        let appeal = Stream::new(master, ACT, key, who(c.user, c.seq as u16) | 5 << 40).normal();
        let weight = (1.0 + population.graph().in_degree(UserId(c.user)) as f64).powf(config.attention as f64)
            * (config.virality as f64 * appeal).exp();
        root_w.push(weight);
    }
    // Pass 1b (parallel: the roots are all known): which root each reaction goes to.
    // Someone they have a strong relationship with, if they posted; else one of their home
    // feed's roots by rank weight.
    let feed = (config.feed as usize).clamp(1, 64);
    let from_roots = FollowedRoots::new(population, &root_by_author, &choices[n_roots..], forced_side());
    let picks: Vec<Pick> = choices[n_roots..]
        .par_iter()
        .map_init(
            || (Vec::new(), Vec::new()),
            |(followed, shown): &mut (Vec<usize>, Vec<(usize, f64)>), c| {
                let mut rng = Stream::new(master, ACT, key, who(c.user, c.seq as u16) | 1 << 40);
                let related = state.and_then(|st| {
                    st.relations()
                        .of(c.user)
                        .iter()
                        .filter_map(|r| {
                            let k = root_by_author.get(r.other)?;
                            let w = drifted(r.weight, r.minute, minute, st.config().relations.half_life_days);
                            (w.abs() >= 0.3).then_some((w, r.other, k))
                        })
                        .max_by(|a, b| a.0.abs().total_cmp(&b.0.abs()).then(b.1.cmp(&a.1)))
                });
                let related = related.filter(|_| rng.chance(config.relationship_pull as f64));
                // Whom they follow: the graph, with the follows and unfollows relationships made.
                followed.clear();
                let changed =
                    state.filter(|st| !st.follows().of(c.user).is_empty()).map(|st| st.following(population, c.user));
                match (changed, &from_roots) {
                    (None, Some(f)) => f.get(c.user, followed),
                    (changed, _) => {
                        let following =
                            changed.as_deref().unwrap_or_else(|| population.graph().following(UserId(c.user)));
                        followed.extend(following.iter().filter_map(|&v| root_by_author.get(v)));
                    }
                }
                // The home feed: the roots of whom they follow (in network, weighing
                // `in_network` more) and `feed` "for you" roots drawn at random from the event's
                // (all of them when there are fewer), ranked by appeal × recency; the action goes
                // to one by rank weight. The feed's size, not the population's, sets how
                // attention concentrates.
                let at = event.time.0 + c.delay;
                let recency = |k: usize| {
                    let age = (at - posts[k].time.0) as f64 / 60.0;
                    if age >= 0.0 {
                        (-age / config.recency_minutes.max(1.0) as f64).exp()
                    } else {
                        (age / 30.0).exp()
                    }
                };
                let home = |rng: &mut Stream, shown: &mut Vec<(usize, f64)>| {
                    shown.clear();
                    let boost = config.in_network.max(0.0) as f64;
                    shown.extend(followed.iter().map(|&k| (k, boost * root_w[k] * recency(k))));
                    // With fewer roots than slots, the weight of the other slots.
                    let mut outside = None;
                    if roots.len() <= feed {
                        shown.extend(roots.iter().map(|&k| (k, root_w[k] * recency(k))));
                        // The feed still has `feed` slots: the rest show other posts, whose
                        // appeal follows the same law (a random root's weight stands for one).
                        // Landing there, the user scrolls on to the event's root ranked first
                        // in their feed (its top post), so a small event's few roots compete as a large one's do.
                        let mut w = 0.0;
                        for _ in roots.len()..feed {
                            let k = roots[rng.below(roots.len() as u64) as usize];
                            w += root_w[k] * recency(k);
                        }
                        outside = Some(w);
                    } else {
                        // `feed` distinct roots (a root shown twice would weigh double, which
                        // only happens often when the event has few roots).
                        let from = shown.len();
                        while shown.len() - from < feed {
                            let k = roots[rng.below(roots.len() as u64) as usize];
                            if !shown[from..].iter().any(|s| s.0 == k) {
                                shown.push((k, root_w[k] * recency(k)));
                            }
                        }
                    }
                    let total: f64 = shown.iter().map(|s| s.1).sum();
                    if let Some(w) = outside {
                        if rng.f64() * (total + w) >= total {
                            // (the largest weight; the first shown on a tie)
                            return shown.iter().rev().max_by(|a, b| a.1.total_cmp(&b.1)).map_or(roots[0], |s| s.0);
                        }
                    }
                    let mut x = rng.f64() * total;
                    for &(k, w) in shown.iter() {
                        if x < w {
                            return k;
                        }
                        x -= w;
                    }
                    shown[shown.len() - 1].0
                };
                let mut target = match related {
                    Some((_, _, k)) => k,
                    None => home(&mut rng, shown),
                };
                // A follow-up goes to someone else's post (a few redraws, then whatever came).
                for _ in 0..4 {
                    if posts[target].author.0 != c.user {
                        break;
                    }
                    target = home(&mut rng, shown);
                }
                // The tone follows the relationship: hostile to rivals, on side with friends.
                let sentiment = match related {
                    // Against whatever the rival said (a neutral post draws a negative answer).
                    Some((w, _, k)) if w < 0.0 => match posts[k].sentiment {
                        Sentiment::Negative => Sentiment::Positive,
                        _ => Sentiment::Negative,
                    },
                    Some((_, _, k)) => posts[k].sentiment,
                    None => c.sentiment,
                };
                Pick { target, related: related.is_some(), sentiment, rng }
            },
        )
        .collect();
    // Pass 1c (sequential: a reply may answer an earlier reply): links and times.
    for (c, mut pick) in choices[n_roots..].iter().zip(picks) {
        let mut target = pick.target;
        if !pick.related
            && matches!(c.kind, PostKind::Reply | PostKind::Gif)
            && !replies.is_empty()
            && pick.rng.chance(config.reply_to_reply as f64)
        {
            let r = replies[pick.rng.below(replies.len() as u64) as usize];
            if posts[r].depth < config.max_depth && posts[r].author.0 != c.user {
                target = r;
            }
        }
        let index = posts.len();
        let t: &Post = &posts[target];
        let mut p = post(c, c.kind, pick.sentiment, (event.time.0 + c.delay).max(t.time.0 + 30), index);
        match c.kind {
            PostKind::Quote => p.quoted = Some(t.id),
            PostKind::Reply | PostKind::Gif => {
                p.parent = Some(t.id);
                p.root = Some(t.root.unwrap_or(t.id));
                p.depth = t.depth + 1;
                replies.push(index);
            }
            _ => p.parent = Some(t.id),
        }
        posts.push(p);
        targets.push(Some(target));
        seqs.push(c.seq as u16);
    }
    // Pass 1d (sequential: a retort may draw a retort): arguments. The author of a post
    // answers a hostile reply to it, keeping their side, and the replier may answer back.
    if config.retort > 0.0 {
        let mut retorts: crate::state::IdMap<u16> = Default::default();
        let mut k = n_roots;
        while k < posts.len() {
            let p = &posts[k];
            let parent = targets[k].filter(|_| p.kind == PostKind::Reply && p.depth < config.max_depth);
            k += 1;
            let Some(t) = parent else { continue };
            let them = posts[t].sentiment;
            let retorter = posts[t].author.0;
            if !them.opposes(p.sentiment) || retorter == p.author.0 {
                continue;
            }
            let index = k - 1;
            let mut rng = Stream::new(master, RETORT, key, retorter as u64 | (index as u64) << 32);
            let agreeable = cols.persona[retorter as usize].big5[3] as f64 / 255.0;
            if !rng.chance(config.retort as f64 * (1.5 - agreeable)) {
                continue;
            }
            let count = retorts.entry(retorter).or_insert(0);
            let seq = RETORT_SEQ.saturating_add(*count);
            *count = count.saturating_add(1);
            let delay = ((mu + config.delay_sigma as f64 * rng.normal()).exp() / 3.0).clamp(30.0, 86_400.0) as i64;
            let c = Choice { user: retorter, seq: 0, kind: PostKind::Reply, delay: 0, sentiment: them, engagement: 0 };
            let answered = &posts[index];
            let mut r = post(&c, PostKind::Reply, them, answered.time.0 + delay, posts.len());
            r.parent = Some(answered.id);
            r.root = Some(answered.root.unwrap_or(answered.id));
            r.depth = answered.depth + 1;
            posts.push(r);
            targets.push(Some(index));
            seqs.push(seq);
        }
    }
    // Handles from the population's table, a batch at a time after loading where each one
    // ends (derived one by one without a table).
    let table = population.handles();
    posts.par_chunks_mut(32).for_each(|batch| {
        if let Some(t) = table {
            load_together(batch.iter().map(|p| t.end_of(p.author)));
        }
        for p in batch {
            p.handle = match table.and_then(|t| t.get(p.author)) {
                Some(h) => h.to_string(),
                None => population.handle(p.author),
            };
        }
    });
    let filled: Vec<Fill> = posts
        .par_iter()
        .zip(targets.par_iter().zip(seqs.par_iter()))
        .map_init(String::new, |buf, (p, (target, &seq))| {
            let me = who(p.author.0, seq);
            let salt = key ^ me.rotate_left(21);
            let action = match p.kind {
                PostKind::Post => Action::Post,
                PostKind::Reply => Action::Reply,
                PostKind::Quote => Action::Quote,
                PostKind::Gif => {
                    let mut rng = Stream::new(master, MEDIA, key, me);
                    let opposed = target.is_some_and(|t| posts[t].sentiment.opposes(p.sentiment));
                    let mood = GifMood {
                        category: class.category,
                        sentiment: p.sentiment,
                        intensity: class.intensity,
                        opposed,
                    };
                    let gif = media.pick_gif(&mood, &gif_memory.recent(p.author.0), &mut rng);
                    let caption = rng.chance(config.gif_caption as f64).then(|| {
                        let grave = names.facts.grave;
                        templates.caption(population, p.author, class.category, p.sentiment, grave, salt, buf);
                        buf.clone()
                    });
                    return Fill { text: caption, gif: Some(gif), picture: None };
                }
                _ => return Fill::default(),
            };
            let author = target.map(|t| format!("@{}", posts[t].handle)).unwrap_or_default();
            let stance = match target {
                Some(t) => {
                    let mut rng = Stream::new(master, ACT, key, me | 3 << 40);
                    let agreeable = cols.persona[p.author.index()].big5[3] as f32 / 255.0;
                    Stance::toward(p.sentiment, posts[*t].sentiment, rng.f64(), agreeable, names.facts.grave)
                }
                None => Stance::plain(p.sentiment),
            };
            let ctx = PostContext {
                key: salt,
                category: class.category,
                action,
                sentiment: p.sentiment,
                subject: &names.subject,
                what: &names.what,
                author: &author,
                hashtag: &names.hashtag,
                against_event: matches!(
                    (class.valence, p.sentiment),
                    (Valence::Positive, Sentiment::Negative) | (Valence::Negative, Sentiment::Positive)
                ),
                drift: state.map_or([0, 0], |st| {
                    let h = st.habits(p.author.0);
                    [h.emoji, h.hashtag]
                }),
                facts: &names.facts,
                fan: is_fan(population, &names, class.valence, p.author, p.sentiment),
                stance,
            };
            templates.render(population, p.author, &ctx, buf);
            // A memory worth recalling, on the same side as the post, now and then.
            if let Some(st) = state {
                let sign = p.sentiment.sign();
                if let Some(r) = st.reflections().recall(p.author.0, class.category as u8, subject, minute) {
                    let mut rng = Stream::new(master, ACT, key, me | 1 << 41);
                    // Only a memory of something the post may name (the event's or the
                    // author's own), so a recall never brings in another event's facts.
                    let entity = r.subject < crate::state::reflect::subject::ENTITY_MAX
                        && (r.subject as usize) < population.world().entities.len();
                    let fits = !entity || crate::check::may_name(population, p.author, nameable, r.subject as u16);
                    if (r.sign == sign || r.sign == 0) && fits && rng.chance(config.recall as f64) {
                        buf.push(' ');
                        buf.push_str(&st.reflection_text(population, p.author.0, r));
                    }
                }
            }
            let mut picture = None;
            if p.kind == PostKind::Post {
                let mut rng = Stream::new(master, MEDIA, key, me | 1 << 40);
                let media_rate = dq8(cols.activity[p.author.index()].gif) as f64;
                if rng.chance(config.image_rate as f64 * media_rate) {
                    picture = Some(match media.picture(class.category, p.sentiment, &event.text, &mut rng) {
                        Picture::Catalogue(img) => (Some(img.id.clone()), None),
                        Picture::Request(r) => (None, Some(r)),
                    });
                }
            }
            Fill { text: Some(buf.clone()), gif: None, picture }
        })
        .collect();
    for (p, f) in posts.iter_mut().zip(filled) {
        p.text = f.text;
        p.gif = f.gif.map(|g| media.gifs()[g as usize].id.clone());
        if let Some((image, request)) = f.picture {
            p.image = image;
            p.image_request = request;
        }
    }
    posts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Pipeline;
    use crate::events::parse_events_numbered;
    use crate::{SeedSet, World};

    /// Finding the roots a reactor follows from either side gives the same posts, with the
    /// user state's follows and unfollows in play.
    #[test]
    fn followed_roots_are_the_same_from_either_side() {
        let world = World::embedded().expect("world");
        let seeds = SeedSet::embedded(&world).expect("seeds");
        let text = include_bytes!("../examples/events/demo.jsonl");
        let run = |side: bool| {
            FORCE_SIDE.with(|f| f.set(Some(side)));
            let population = Population::generate(&seeds, &world, 30_000, 5).expect("population");
            let mut pipeline = Pipeline::new(population).expect("pipeline");
            let mut posts = Vec::new();
            for (i, (line, event)) in parse_events_numbered(text).into_iter().enumerate() {
                posts.extend(pipeline.process(&event.expect("demo event"), i as u32, line).expect("processed").0);
            }
            FORCE_SIDE.with(|f| f.set(None));
            posts
        };
        let (roots_side, reactors_side) = (run(true), run(false));
        let followed = reactors_side.iter().filter(|p| p.parent.is_some() || p.quoted.is_some()).count();
        assert!(followed > 1_000, "the demo draws reactions to roots ({followed})");
        assert!(roots_side == reactors_side, "the two sides pick different targets");
    }

    /// With many roots (so reactors often follow several), each reactor's list of followed
    /// roots is the same, in the same order, from either side.
    #[test]
    fn followed_roots_lists_match_the_followings_scan() {
        let world = World::embedded().expect("world");
        let seeds = SeedSet::embedded(&world).expect("seeds");
        let population = Population::generate(&seeds, &world, 30_000, 5).expect("population");
        let mut roots = RootsByAuthor::new(population.len());
        for (k, a) in (0..30_000u32).filter(|u| crate::rng::mix64(*u as u64) % 10 == 0).enumerate() {
            roots.insert(a, k);
        }
        let reactors: Vec<Choice> = (0..30_000u32)
            .filter(|u| crate::rng::mix64(*u as u64 ^ 77) % 4 == 0)
            .map(|user| Choice {
                user,
                seq: 0,
                kind: PostKind::Like,
                delay: 0,
                sentiment: Sentiment::Neutral,
                engagement: 0,
            })
            .collect();
        let f = FollowedRoots::new(&population, &roots, &reactors, Some(true)).expect("forced");
        let (mut several, mut got) = (0, Vec::new());
        for c in &reactors {
            got.clear();
            f.get(c.user, &mut got);
            let want: Vec<usize> =
                population.graph().following(UserId(c.user)).iter().filter_map(|&v| roots.get(v)).collect();
            assert_eq!(got, want, "user {}", c.user);
            several += (want.len() > 1) as usize;
        }
        assert!(several > 100, "reactors following several roots: {several}");
    }
}
