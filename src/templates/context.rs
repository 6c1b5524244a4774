//! What a post is about: the event's facts for the frame slots, the reply's stance toward the
//! post it answers, and the whole context a template is filled from.

use super::{Action, Sentiment};
use crate::events::Category;
use crate::frame::Kind;

/// How a reply or quote stands toward the post it answers, by the replier's sentiment and
/// the answered post's: the `agree` bank's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stance {
    /// Both positive.
    AgreePositive,
    /// Both negative: bleak agreement.
    AgreeNegative,
    /// Both neutral.
    AgreeNeutral,
    /// Both negative: sympathy.
    ConsoleNegative,
    /// Replier positive, answered post negative: civil pushback.
    DisagreePositive,
    /// Replier negative, answered post positive.
    DisagreeNegative,
    /// Replier positive against a negative post, snarky.
    MockPositive,
    /// Replier negative against a positive post, snarky.
    MockNegative,
    /// Replier neutral toward a polar post: a question.
    AskNeutral,
}

/// The stance codes of `phrases/agree.tsv`.
pub const STANCES: [(&str, Stance); 9] = [
    ("agree-positive", Stance::AgreePositive),
    ("agree-negative", Stance::AgreeNegative),
    ("agree-neutral", Stance::AgreeNeutral),
    ("console-negative", Stance::ConsoleNegative),
    ("disagree-positive", Stance::DisagreePositive),
    ("disagree-negative", Stance::DisagreeNegative),
    ("mock-positive", Stance::MockPositive),
    ("mock-negative", Stance::MockNegative),
    ("ask-neutral", Stance::AskNeutral),
];

impl Stance {
    /// The stance of a post with sentiment `own` (the plain agreement of its own feeling).
    pub fn plain(own: Sentiment) -> Stance {
        match own {
            Sentiment::Positive => Stance::AgreePositive,
            Sentiment::Negative => Stance::AgreeNegative,
            Sentiment::Neutral => Stance::AgreeNeutral,
        }
    }

    /// The stance of a reply with sentiment `own` to a post with sentiment `parent`. `roll` in
    /// [0, 1) picks between the stances that fit; `agreeable` (0..1) makes mockery rarer, and
    /// a grave event (deaths, disasters, crime) has none.
    pub fn toward(own: Sentiment, parent: Sentiment, roll: f64, agreeable: f32, grave: bool) -> Stance {
        let mock = !grave && roll < (1.0 - agreeable as f64) * 0.5;
        match (own, parent) {
            (Sentiment::Negative, Sentiment::Negative) if roll < 0.35 => Stance::ConsoleNegative,
            (Sentiment::Positive, Sentiment::Negative) if mock => Stance::MockPositive,
            (Sentiment::Positive, Sentiment::Negative) => Stance::DisagreePositive,
            (Sentiment::Negative, Sentiment::Positive) if mock => Stance::MockNegative,
            (Sentiment::Negative, Sentiment::Positive) => Stance::DisagreeNegative,
            (Sentiment::Neutral, Sentiment::Positive | Sentiment::Negative) => Stance::AskNeutral,
            (own, _) => Stance::plain(own),
        }
    }

    /// Whether the stance opposes the answered post.
    pub fn opposes(self) -> bool {
        matches!(
            self,
            Stance::DisagreePositive | Stance::DisagreeNegative | Stance::MockPositive | Stance::MockNegative
        )
    }
}

/// The event's facts as templates name them: a frame slot's value per [`super::SLOTS`] entry, which
/// of them the event has, its kind and whether it is grave. Built once per event.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The frame kind, if the event has one other than `other`.
    pub kind: Option<Kind>,
    /// Which slots have a value (bits as in [`crate::frame::Frame::slots`]).
    pub slots: u16,
    /// The slot values, "" where absent.
    pub values: [String; 8],
    /// Deaths, disasters, crime: no laughing or celebrating emoji, no mockery.
    pub grave: bool,
}

/// No facts (an event without a frame).
pub static NO_FACTS: Facts = Facts {
    kind: None,
    slots: 0,
    values: [
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ],
    grave: false,
};

/// What a post is about: the event, the action, and the names to fill in.
#[derive(Clone, Copy, Debug)]
pub struct PostContext<'a> {
    /// Randomness key: the event and the post's position (e.g. `event_key ^ salt`).
    pub key: u64,
    /// Event category.
    pub category: Category,
    /// Post, reply or quote.
    pub action: Action,
    /// How the author feels.
    pub sentiment: Sentiment,
    /// The main stakeholder as users name it ("the Redhawks").
    pub subject: &'a str,
    /// A short summary of the event.
    pub what: &'a str,
    /// `@handle` of the post replied to or quoted (empty for posts).
    pub author: &'a str,
    /// A hashtag (`#Redhawks`), used when the user's hashtag habit fires.
    pub hashtag: &'a str,
    /// The author's sentiment runs against the event's own valence (a rival fan on a win):
    /// templates that quote the event text are skipped, since its words carry the opposite
    /// mood.
    pub against_event: bool,
    /// The author's drifted emoji and hashtag habits (added to their rates, out of 255).
    pub drift: [i8; 2],
    /// The event's facts for the frame slots ([`NO_FACTS`] without a frame).
    pub facts: &'a Facts,
    /// The author supports the side their sentiment goes with (a fan of the winner who is
    /// happy): fan templates are open to them.
    pub fan: bool,
    /// How a reply or quote stands toward the post answered ([`Stance::plain`] for posts).
    pub stance: Stance,
}
