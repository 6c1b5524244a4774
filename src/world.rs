//! The world file: towns, leagues, teams, parties, public figures and brands that seeds and
//! events refer to. Games replace the shipped `seeds/world.jsonl` with their own.
//!
//! Invariant: after [`World::parse`] every reference (team town, league, rival, person party or
//! team) resolves, ids are unique across all kinds, and there are at most `u16::MAX - 1` entities.

use crate::error::{Error, Result};
use crate::jsonl::{check_range, from_value, last_line, parse_lines};
use crate::taxonomy::Topic;
use serde::Deserialize;
use std::collections::HashMap;

/// Index of an entity in [`World::entities`].
pub type EntityIdx = u16;
/// Marker for "no entity" in compact columns.
pub const NO_ENTITY: EntityIdx = u16::MAX;

enum RawEntity {
    Town(RawTown),
    League(RawLeague),
    Team(RawTeam),
    Party(RawParty),
    Person(RawPerson),
    Brand(RawBrand),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTown {
    id: String,
    name: String,
    country: String,
    utc_offset: f32,
    population: f32,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLeague {
    id: String,
    name: String,
    sport: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    id: String,
    name: String,
    short: String,
    league: String,
    town: String,
    #[serde(default)]
    rivals: Vec<String>,
    #[serde(default)]
    aliases: Vec<String>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParty {
    id: String,
    name: String,
    short: String,
    leaning: f32,
    #[serde(default)]
    aliases: Vec<String>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    id: String,
    name: String,
    role: String,
    topic: String,
    #[serde(default)]
    party: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBrand {
    id: String,
    name: String,
    topic: String,
    #[serde(default)]
    aliases: Vec<String>,
}

/// What kind of thing an entity is, with its details.
#[derive(Clone, Debug, PartialEq)]
pub enum EntityKind {
    /// A town or city: where users live.
    Town {
        /// Country name.
        country: String,
        /// Hours from UTC (may be fractional).
        utc_offset: f32,
        /// Relative size (millions of inhabitants); users are spread by it.
        population: f32,
    },
    /// A sports league.
    League {
        /// The sport played.
        sport: String,
    },
    /// A sports team.
    Team {
        /// Short name ("Redhawks").
        short: String,
        /// Entity index of its league.
        league: EntityIdx,
        /// Entity index of its home town.
        town: EntityIdx,
        /// Entity indices of rival teams.
        rivals: Vec<EntityIdx>,
    },
    /// A political party.
    Party {
        /// Short name.
        short: String,
        /// Left (-1) to right (+1).
        leaning: f32,
    },
    /// A public figure.
    Person {
        /// What they do ("singer").
        role: String,
        /// Their main topic.
        topic: Topic,
        /// Their party, if a politician.
        party: Option<EntityIdx>,
        /// Their team, if an athlete.
        team: Option<EntityIdx>,
    },
    /// A brand or company.
    Brand {
        /// Its main topic.
        topic: Topic,
    },
}

/// One named thing in the world.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    /// Unique kebab-case id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Other names it goes by (used by event classification).
    pub aliases: Vec<String>,
    /// Kind and details.
    pub kind: EntityKind,
    /// Line in the world file (for later error messages).
    pub line: usize,
}

/// The loaded world.
#[derive(Clone, Debug)]
pub struct World {
    /// File name it was loaded from.
    pub file: String,
    /// The file's text (kept so snapshots are self-contained).
    pub source: String,
    /// All entities in file order.
    pub entities: Vec<Entity>,
    /// Entity indices of towns, in file order.
    pub towns: Vec<EntityIdx>,
    /// Entity indices of teams.
    pub teams: Vec<EntityIdx>,
    /// Entity indices of parties.
    pub parties: Vec<EntityIdx>,
    by_id: HashMap<String, EntityIdx>,
    /// Every word of every name and alias, lowercase (built on first use).
    name_words: std::sync::OnceLock<std::collections::HashSet<String>>,
}

fn check_id(file: &str, line: usize, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::data(file, line, "id", format!("{id:?} must be 1-64 characters of [a-z0-9-]")))
    }
}

fn check_name(file: &str, line: usize, field: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 120 {
        Err(Error::data(file, line, field, "must be 1-120 bytes, not blank"))
    } else {
        Ok(())
    }
}

fn parse_topic(file: &str, line: usize, name: &str) -> Result<Topic> {
    Topic::from_name(name)
        .ok_or_else(|| Error::data(file, line, "topic", format!("unknown topic {name:?} (see seeds/README.md)")))
}

impl World {
    /// Whether `word` (any case) is a whole name or alias of an entity, or one word of a
    /// name ("herd" for a team called the Herd): a typo must not make one.
    pub fn is_name_word(&self, word: &str) -> bool {
        let words = self.name_words.get_or_init(|| {
            self.entities
                .iter()
                .flat_map(|e| std::iter::once(&e.name).chain(&e.aliases))
                .flat_map(|n| n.split_whitespace())
                .map(str::to_lowercase)
                .collect()
        });
        words.contains(&word.to_lowercase())
    }

    /// Loads a world file from disk.
    pub fn load(path: &std::path::Path) -> Result<World> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        World::parse(&path.display().to_string(), &text)
    }

    /// The world shipped in `seeds/world.jsonl`, embedded in the binary.
    pub fn embedded() -> Result<World> {
        World::parse("seeds/world.jsonl", include_str!("../seeds/world.jsonl"))
    }

    /// Parses and validates a world file's text. `file` is used in error messages.
    pub fn parse(file: &str, text: &str) -> Result<World> {
        let values: Vec<(usize, serde_json::Value)> = parse_lines(file, text)?;
        if values.len() >= NO_ENTITY as usize {
            return Err(Error::data(file, last_line(text), "-", "too many entities (at most 65534)"));
        }
        let mut rows = Vec::with_capacity(values.len());
        for (line, mut value) in values {
            let kind = match value.as_object_mut().map(|o| o.remove("kind")) {
                None => return Err(Error::data(file, line, "-", "expected a JSON object")),
                Some(None) => return Err(Error::data(file, line, "kind", "missing field `kind`")),
                Some(Some(serde_json::Value::String(k))) => k,
                Some(Some(other)) => {
                    return Err(Error::data(file, line, "kind", format!("expected a string, found {other}")))
                }
            };
            let raw = match kind.as_str() {
                "town" => RawEntity::Town(from_value(file, line, value)?),
                "league" => RawEntity::League(from_value(file, line, value)?),
                "team" => RawEntity::Team(from_value(file, line, value)?),
                "party" => RawEntity::Party(from_value(file, line, value)?),
                "person" => RawEntity::Person(from_value(file, line, value)?),
                "brand" => RawEntity::Brand(from_value(file, line, value)?),
                k => {
                    return Err(Error::data(
                        file,
                        line,
                        "kind",
                        format!("unknown kind {k:?} (expected town, league, team, party, person or brand)"),
                    ))
                }
            };
            rows.push((line, raw));
        }
        // Pass 1: ids.
        let mut by_id = HashMap::new();
        for (i, (line, raw)) in rows.iter().enumerate() {
            let id = match raw {
                RawEntity::Town(r) => &r.id,
                RawEntity::League(r) => &r.id,
                RawEntity::Team(r) => &r.id,
                RawEntity::Party(r) => &r.id,
                RawEntity::Person(r) => &r.id,
                RawEntity::Brand(r) => &r.id,
            };
            check_id(file, *line, id)?;
            if by_id.insert(id.clone(), i as EntityIdx).is_some() {
                return Err(Error::data(file, *line, "id", format!("duplicate id {id:?}")));
            }
        }
        let kind_of = |idx: EntityIdx| -> &RawEntity { &rows[idx as usize].1 };
        let resolve = |line: usize, field: &str, id: &str, want: &str| -> Result<EntityIdx> {
            let idx = *by_id.get(id).ok_or_else(|| Error::data(file, line, field, format!("unknown {want} {id:?}")))?;
            let is = matches!(
                (kind_of(idx), want),
                (RawEntity::Town(_), "town")
                    | (RawEntity::League(_), "league")
                    | (RawEntity::Team(_), "team")
                    | (RawEntity::Party(_), "party")
            );
            if is {
                Ok(idx)
            } else {
                Err(Error::data(file, line, field, format!("{id:?} is not a {want}")))
            }
        };
        // Pass 2: details and references.
        let mut entities = Vec::with_capacity(rows.len());
        for (line, raw) in &rows {
            let line = *line;
            let (id, name, aliases, kind) = match raw {
                RawEntity::Town(r) => {
                    check_range(file, line, "utc_offset", r.utc_offset, -12.0, 14.0)?;
                    check_range(file, line, "population", r.population, 0.001, 1000.0)?;
                    check_name(file, line, "country", &r.country)?;
                    let kind = EntityKind::Town {
                        country: r.country.clone(),
                        utc_offset: r.utc_offset,
                        population: r.population,
                    };
                    (&r.id, &r.name, Vec::new(), kind)
                }
                RawEntity::League(r) => {
                    let kind = EntityKind::League { sport: r.sport.clone() };
                    (&r.id, &r.name, Vec::new(), kind)
                }
                RawEntity::Team(r) => {
                    check_name(file, line, "short", &r.short)?;
                    let league = resolve(line, "league", &r.league, "league")?;
                    let town = resolve(line, "town", &r.town, "town")?;
                    let mut rivals = Vec::new();
                    for (k, rival) in r.rivals.iter().enumerate() {
                        let field = format!("rivals[{k}]");
                        let idx = resolve(line, &field, rival, "team")?;
                        if rival == &r.id {
                            return Err(Error::data(file, line, field, "a team cannot rival itself"));
                        }
                        rivals.push(idx);
                    }
                    let kind = EntityKind::Team { short: r.short.clone(), league, town, rivals };
                    (&r.id, &r.name, r.aliases.clone(), kind)
                }
                RawEntity::Party(r) => {
                    check_range(file, line, "leaning", r.leaning, -1.0, 1.0)?;
                    let kind = EntityKind::Party { short: r.short.clone(), leaning: r.leaning };
                    (&r.id, &r.name, r.aliases.clone(), kind)
                }
                RawEntity::Person(r) => {
                    let topic = parse_topic(file, line, &r.topic)?;
                    let party = match &r.party {
                        Some(p) => Some(resolve(line, "party", p, "party")?),
                        None => None,
                    };
                    let team = match &r.team {
                        Some(t) => Some(resolve(line, "team", t, "team")?),
                        None => None,
                    };
                    let kind = EntityKind::Person { role: r.role.clone(), topic, party, team };
                    (&r.id, &r.name, r.aliases.clone(), kind)
                }
                RawEntity::Brand(r) => {
                    let topic = parse_topic(file, line, &r.topic)?;
                    (&r.id, &r.name, r.aliases.clone(), EntityKind::Brand { topic })
                }
            };
            check_name(file, line, "name", name)?;
            entities.push(Entity { id: id.clone(), name: name.clone(), aliases, kind, line });
        }
        let pick = |f: fn(&EntityKind) -> bool| -> Vec<EntityIdx> {
            (0..entities.len()).filter(|&i| f(&entities[i].kind)).map(|i| i as EntityIdx).collect()
        };
        let towns = pick(|k| matches!(k, EntityKind::Town { .. }));
        let teams = pick(|k| matches!(k, EntityKind::Team { .. }));
        let parties = pick(|k| matches!(k, EntityKind::Party { .. }));
        if towns.is_empty() {
            return Err(Error::data(file, last_line(text), "kind", "the world needs at least one town"));
        }
        if towns.len() > 255 {
            return Err(Error::data(file, last_line(text), "kind", "at most 255 towns"));
        }
        Ok(World {
            file: file.to_string(),
            source: text.to_string(),
            entities,
            towns,
            teams,
            parties,
            by_id,
            name_words: Default::default(),
        })
    }

    /// Looks an entity up by id.
    pub fn find(&self, id: &str) -> Option<EntityIdx> {
        self.by_id.get(id).copied()
    }

    /// The entity at `idx`.
    pub fn entity(&self, idx: EntityIdx) -> &Entity {
        &self.entities[idx as usize]
    }

    /// How users name an entity: "the Redhawks" for a team, a party's short name, else its
    /// name.
    pub fn display_name(&self, idx: EntityIdx) -> String {
        let ent = self.entity(idx);
        match &ent.kind {
            EntityKind::Team { short, .. } => format!("the {short}"),
            EntityKind::Party { short, .. } => short.clone(),
            _ => ent.name.clone(),
        }
    }

    /// Position of a town entity in [`World::towns`], if `idx` is a town.
    pub fn town_slot(&self, idx: EntityIdx) -> Option<u8> {
        self.towns.iter().position(|&t| t == idx).map(|p| p as u8)
    }

    /// UTC offset of the town in slot `slot` of [`World::towns`].
    pub fn town_offset(&self, slot: u8) -> f32 {
        match &self.entity(self.towns[slot as usize]).kind {
            EntityKind::Town { utc_offset, .. } => *utc_offset,
            _ => 0.0,
        }
    }

    /// Relative population of the town in slot `slot`.
    pub fn town_population(&self, slot: u8) -> f32 {
        match &self.entity(self.towns[slot as usize]).kind {
            EntityKind::Town { population, .. } => *population,
            _ => 0.0,
        }
    }

    /// Home town slot of a team entity (if `team` is a team).
    pub fn team_town_slot(&self, team: EntityIdx) -> Option<u8> {
        match &self.entity(team).kind {
            EntityKind::Team { town, .. } => self.town_slot(*town),
            _ => None,
        }
    }

    /// Rivals of a team entity (empty if not a team).
    pub fn rivals(&self, team: EntityIdx) -> &[EntityIdx] {
        match &self.entity(team).kind {
            EntityKind::Team { rivals, .. } => rivals,
            _ => &[],
        }
    }

    /// Leaning of a party entity.
    pub fn party_leaning(&self, party: EntityIdx) -> Option<f32> {
        match &self.entity(party).kind {
            EntityKind::Party { leaning, .. } => Some(*leaning),
            _ => None,
        }
    }

    /// League of a team entity.
    pub fn team_league(&self, team: EntityIdx) -> Option<EntityIdx> {
        match &self.entity(team).kind {
            EntityKind::Team { league, .. } => Some(*league),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"{"kind": "town", "id": "a-town", "name": "A Town", "country": "X", "utc_offset": -5.0, "population": 1.0}
{"kind": "league", "id": "l", "name": "League", "sport": "basketball"}
{"kind": "team", "id": "t1", "name": "T One", "short": "Ones", "league": "l", "town": "a-town", "rivals": ["t2"], "aliases": []}
{"kind": "team", "id": "t2", "name": "T Two", "short": "Twos", "league": "l", "town": "a-town", "rivals": ["t1"], "aliases": []}
{"kind": "party", "id": "p", "name": "Party", "short": "P", "leaning": 0.2, "aliases": []}
"#;

    #[test]
    fn mini_world_parses_and_resolves() {
        let w = World::parse("w", MINI).unwrap();
        assert_eq!(w.towns.len(), 1);
        assert_eq!(w.teams.len(), 2);
        let t1 = w.find("t1").unwrap();
        assert_eq!(w.rivals(t1), &[w.find("t2").unwrap()]);
        assert_eq!(w.team_town_slot(t1), Some(0));
    }

    #[test]
    fn bad_references_and_fields_are_named() {
        let bad =
            MINI.replace("\"town\": \"a-town\", \"rivals\": [\"t2\"]", "\"town\": \"nowhere\", \"rivals\": [\"t2\"]");
        let err = World::parse("w", &bad).unwrap_err().to_string();
        assert_eq!(err, "w:3: town: unknown town \"nowhere\"");
        let bad = MINI.replace("\"leaning\": 0.2", "\"leaning\": 3.0");
        let err = World::parse("w", &bad).unwrap_err().to_string();
        assert_eq!(err, "w:5: leaning: 3 is outside [-1, 1]");
        let bad = MINI.replace("\"sport\"", "\"sprot\"");
        let err = World::parse("w", &bad).unwrap_err().to_string();
        assert!(err.starts_with("w:2:") && err.contains("sprot"), "{err}");
        let bad = format!("{MINI}{{\"kind\": \"town\", \"id\": \"a-town\", \"name\": \"B\", \"country\": \"X\", \"utc_offset\": 1.0, \"population\": 1.0}}\n");
        let err = World::parse("w", &bad).unwrap_err().to_string();
        assert_eq!(err, "w:6: id: duplicate id \"a-town\"");
        let err = World::parse("w", "{\"kind\": \"spaceship\", \"id\": \"x\"}").unwrap_err().to_string();
        assert!(err.starts_with("w:1:") && err.contains("spaceship"), "{err}");
    }
}
