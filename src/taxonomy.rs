//! The fixed topic taxonomy that interests, events and templates share.

/// Number of topics in the taxonomy.
pub const TOPIC_COUNT: usize = 16;

/// A topic of interest. The order is part of the snapshot format: append only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Topic {
    /// Sports: leagues, teams, matches.
    Sports,
    /// Politics and government.
    Politics,
    /// Film, TV, celebrities.
    Entertainment,
    /// Technology and gadgets.
    Tech,
    /// Companies, jobs, the economy.
    Business,
    /// Science and research.
    Science,
    /// Health and medicine.
    Health,
    /// Video games and streaming.
    Gaming,
    /// Weather and climate.
    Weather,
    /// Crime and justice.
    Crime,
    /// Arts, books, society.
    Culture,
    /// Music and artists.
    Music,
    /// Food and restaurants.
    Food,
    /// Travel and places.
    Travel,
    /// Fashion and style.
    Fashion,
    /// Personal finance and markets.
    Finance,
}

impl Topic {
    /// All topics, in taxonomy order.
    pub const ALL: [Topic; TOPIC_COUNT] = [
        Topic::Sports,
        Topic::Politics,
        Topic::Entertainment,
        Topic::Tech,
        Topic::Business,
        Topic::Science,
        Topic::Health,
        Topic::Gaming,
        Topic::Weather,
        Topic::Crime,
        Topic::Culture,
        Topic::Music,
        Topic::Food,
        Topic::Travel,
        Topic::Fashion,
        Topic::Finance,
    ];

    /// The lowercase name used in data files.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Sports => "sports",
            Topic::Politics => "politics",
            Topic::Entertainment => "entertainment",
            Topic::Tech => "tech",
            Topic::Business => "business",
            Topic::Science => "science",
            Topic::Health => "health",
            Topic::Gaming => "gaming",
            Topic::Weather => "weather",
            Topic::Crime => "crime",
            Topic::Culture => "culture",
            Topic::Music => "music",
            Topic::Food => "food",
            Topic::Travel => "travel",
            Topic::Fashion => "fashion",
            Topic::Finance => "finance",
        }
    }

    /// Parses a lowercase topic name.
    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The topic's index in [`Topic::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_order() {
        for (i, t) in Topic::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(Topic::from_name(t.name()), Some(t));
        }
        assert_eq!(Topic::from_name("Sports"), None);
    }
}
