//! The analyst SQL of docs/analytics.md, read from the document itself (so it cannot drift),
//! run on a warehouse built from a known history — events made with the domain's types, fed
//! through the real sink (in uneven batches, streams interleaved, one batch redelivered) into a
//! real DuckDB file — and on that warehouse's Parquet export. Every answer is checked against
//! what the history implies, computed here from the events themselves.
//!
//! Longer than our files usually are: the history, the expectations computed from it and the
//! checks belong together (an integration test is one file), and each part is short.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chaos_domain::{
    AccountId, CastHit, CharacterEvent, CharacterId, CharacterName, Content, Currency, ItemChange,
    WalletEvent,
};
use chaos_projectors::runner::{FeedOffset, ProjectionSink};
use chaos_projectors::warehouse::{Warehouse, SESSION_GAP_MINUTES, STORE_FEED};
use chaos_schemas::{AnyEvent, EventEnvelope, PublishedEvent};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use duckdb::types::Value;
use uuid::Uuid;

// ------------------------------------------------------------------------------------------------
// The document.

/// The queries of docs/analytics.md by name (`<!-- query: NAME -->` before a ```sql block).
fn doc_queries(marker: &str) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/analytics.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = BTreeMap::new();
    let open = format!("<!-- {marker}: ");
    let mut rest = text.as_str();
    while let Some(at) = rest.find(&open) {
        rest = &rest[at + open.len()..];
        let name = rest[..rest.find(" -->").unwrap()].to_owned();
        let start = rest.find("```sql\n").unwrap() + "```sql\n".len();
        let end = start + rest[start..].find("```").unwrap();
        out.insert(name, rest[start..end].trim().to_owned());
        rest = &rest[end..];
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Answers, compared by value whatever integer width DuckDB picked.

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Int(i128),
    Float(f64),
    Text(String),
    Day(NaiveDate),
    Null,
}

fn cell(v: Value) -> Cell {
    match v {
        Value::Null => Cell::Null,
        Value::TinyInt(n) => Cell::Int(n.into()),
        Value::SmallInt(n) => Cell::Int(n.into()),
        Value::Int(n) => Cell::Int(n.into()),
        Value::BigInt(n) => Cell::Int(n.into()),
        Value::HugeInt(n) => Cell::Int(n),
        Value::UTinyInt(n) => Cell::Int(n.into()),
        Value::USmallInt(n) => Cell::Int(n.into()),
        Value::UInt(n) => Cell::Int(n.into()),
        Value::UBigInt(n) => Cell::Int(n.into()),
        Value::Float(f) => Cell::Float(f.into()),
        Value::Double(f) => Cell::Float(f),
        Value::Decimal(d) => Cell::Float(d.to_string().parse().unwrap()),
        Value::Text(s) => Cell::Text(s),
        Value::Date32(days) => {
            Cell::Day(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + Duration::days(days.into()))
        }
        other => panic!("unexpected value {other:?}"),
    }
}

fn run(conn: &duckdb::Connection, sql: &str) -> Vec<Vec<Cell>> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let n = row.as_ref().column_count();
        out.push(
            (0..n)
                .map(|i| cell(row.get::<_, Value>(i).unwrap()))
                .collect(),
        );
    }
    out
}

fn int(n: impl Into<i128>) -> Cell {
    Cell::Int(n.into())
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

/// Rows equal, where an expected `Float` is the unrounded value and the answer was rounded to
/// one decimal.
fn assert_rows(name: &str, got: &[Vec<Cell>], expected: &[Vec<Cell>]) {
    assert_eq!(
        got.len(),
        expected.len(),
        "{name}: {got:?}\n!=\n{expected:?}"
    );
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g.len(), e.len(), "{name}: {g:?} != {e:?}");
        for (gc, ec) in g.iter().zip(e) {
            match (gc, ec) {
                (Cell::Float(g), Cell::Float(e)) => {
                    assert!((g - e).abs() <= 0.05 + 1e-9, "{name}: {g} != {e} (rounded)")
                }
                _ => assert_eq!(gc, ec, "{name}: {g:?} != {e:?}"),
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The known history.

/// A tiny deterministic generator (the test needs no dependency for dice).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[derive(Debug, Clone)]
struct Hero {
    id: CharacterId,
    name: String,
    class: String,
    level: u8,
    xp: u64,
    zone: String,
    seq: u64,
    wallet_seq: u64,
    gold: u64,
    gems: u64,
}

struct History {
    content: Content,
    dice: Dice,
    heroes: Vec<Hero>,
    events: Vec<PublishedEvent>,
}

impl History {
    fn push(
        &mut self,
        aggregate: &str,
        id: &str,
        sequence: u64,
        cause: Option<&str>,
        event: AnyEvent,
    ) -> String {
        let event_id =
            chaos_eventstore::publish::event_id(aggregate, id, i64::try_from(sequence).unwrap());
        let position = self.events.len() as i64 + 1;
        self.events.push(PublishedEvent {
            envelope: EventEnvelope {
                event_id,
                event_type: event.event_type().to_owned(),
                aggregate_type: aggregate.to_owned(),
                aggregate_id: id.to_owned(),
                sequence,
                global_position: position,
                occurred_at: event.occurred_at(),
                correlation_id: Some(format!("req-{position}")),
                causation_id: cause.map(str::to_owned),
                traceparent: None,
            },
            event,
        });
        event_id.to_string()
    }

    fn character(&mut self, h: usize, cause: Option<&str>, event: CharacterEvent) -> String {
        self.heroes[h].seq += 1;
        let (id, seq) = (self.heroes[h].id.to_string(), self.heroes[h].seq);
        self.push("character", &id, seq, cause, AnyEvent::Character(event))
    }

    fn wallet(&mut self, h: usize, cause: Option<&str>, event: WalletEvent) {
        self.heroes[h].wallet_seq += 1;
        let (id, seq) = (self.heroes[h].id.to_string(), self.heroes[h].wallet_seq);
        self.push("wallet", &id, seq, cause, AnyEvent::Wallet(event));
    }

    fn create(&mut self, n: usize, at: DateTime<Utc>) {
        let classes: Vec<String> = self.content.classes.keys().cloned().collect();
        let class = classes[n % classes.len()].clone();
        let def = &self.content.classes[&class];
        let (max_hp, max_mana, skills) =
            (def.max_hp(1), def.max_mana(1), def.starting_skills.clone());
        let id = CharacterId::from_uuid(Uuid::from_u128(0x000a_11ce_0000 + n as u128));
        let owner = AccountId::from_uuid(Uuid::from_u128(0x0b0b_0000 + n as u128));
        self.heroes.push(Hero {
            id,
            name: format!("Hero{n:02}"),
            class: class.clone(),
            level: 1,
            xp: 0,
            zone: "whispering_woods".into(),
            seq: 0,
            wallet_seq: 0,
            gold: 0,
            gems: 0,
        });
        let name = CharacterName::parse(&format!("Hero{n:02}")).unwrap();
        self.character(
            n,
            None,
            CharacterEvent::CharacterCreated {
                owner,
                name,
                class,
                level: 1,
                max_hp,
                max_mana,
                zone: "whispering_woods".into(),
                skills,
                created_at: at,
            },
        );
        self.wallet(
            n,
            None,
            WalletEvent::WalletOpened {
                owner,
                character: id,
                opened_at: at,
            },
        );
    }

    fn cast(&mut self, h: usize, at: DateTime<Utc>, hit: CastHit, damage: u32) -> String {
        let zone = self.heroes[h].zone.clone();
        let target = match &hit {
            CastHit::Npc { npc, .. } => npc.clone(),
            CastHit::Character { id } => id.to_string(),
        };
        self.character(
            h,
            None,
            CharacterEvent::SkillCast {
                skill: "strike".into(),
                target: Some(target),
                hit: Some(hit),
                zone,
                mana_before: 40,
                mana_cost: 0,
                mana_after: 40,
                damage,
                cooldown_until: at,
                cast_at: at,
            },
        )
    }

    fn gain(
        &mut self,
        h: usize,
        cause: Option<&str>,
        amount: u64,
        source: String,
        at: DateTime<Utc>,
    ) {
        self.heroes[h].xp += amount;
        let total_xp = self.heroes[h].xp;
        self.character(
            h,
            cause,
            CharacterEvent::ExperienceGained {
                amount,
                total_xp,
                source,
                gained_at: at,
            },
        );
        let reached = self.content.level_for_xp(total_xp);
        while self.heroes[h].level < reached {
            self.heroes[h].level += 1;
            let level = self.heroes[h].level;
            let gold_reward = self.content.gold_reward(level);
            let def = &self.content.classes[&self.heroes[h].class];
            let (max_hp, max_mana) = (def.max_hp(level), def.max_mana(level));
            let up = self.character(
                h,
                cause,
                CharacterEvent::LeveledUp {
                    level,
                    max_hp,
                    max_mana,
                    skills_unlocked: vec![],
                    gold_reward,
                    leveled_at: at,
                },
            );
            // The wallet process manager grants the reward: caused by the level-up.
            self.grant(h, Some(&up), Currency::Gold, gold_reward, "level-up", at);
        }
    }

    fn grant(
        &mut self,
        h: usize,
        cause: Option<&str>,
        currency: Currency,
        amount: u64,
        source: &str,
        at: DateTime<Utc>,
    ) {
        let balance = match currency {
            Currency::Gold => {
                self.heroes[h].gold += amount;
                self.heroes[h].gold
            }
            Currency::Gems => {
                self.heroes[h].gems += amount;
                self.heroes[h].gems
            }
        };
        let reference = format!("ref-{}", self.events.len());
        self.wallet(
            h,
            cause,
            WalletEvent::CurrencyGranted {
                currency,
                amount,
                balance_after: balance,
                source: source.into(),
                reference,
                granted_at: at,
            },
        );
    }

    /// One own action of hero `h` at `at` (and whatever it causes).
    fn act(&mut self, h: usize, at: DateTime<Utc>) {
        match self.dice.below(10) {
            0..=3 => {
                let npcs: Vec<String> = self.content.npcs.keys().cloned().collect();
                let npc = npcs[self.dice.below(npcs.len() as u64) as usize].clone();
                let def = self.content.npcs[&npc].clone();
                let kill = self.dice.below(2) == 0;
                let hp_before = 30;
                let hit = CastHit::Npc {
                    npc: npc.clone(),
                    hp_before,
                    damage: if kill { 30 } else { 10 },
                    hp_after: if kill { 0 } else { 20 },
                };
                self.cast(h, at, hit, 35);
                if kill {
                    let zone = self.heroes[h].zone.clone();
                    self.character(
                        h,
                        None,
                        CharacterEvent::NpcKilled {
                            npc: npc.clone(),
                            zone,
                            xp_reward: def.xp_reward,
                            loot_left: vec![],
                            killed_at: at,
                        },
                    );
                    self.gain(h, None, u64::from(def.xp_reward), format!("kill:{npc}"), at);
                }
            }
            4 => {
                let v = (h + 1 + self.dice.below(self.heroes.len() as u64 - 1) as usize)
                    % self.heroes.len();
                let victim = self.heroes[v].id;
                let cast = self.cast(h, at, CastHit::Character { id: victim }, 50);
                let attacker = self.heroes[h].id;
                let zone = self.heroes[h].zone.clone();
                let later = at + Duration::milliseconds(30);
                let dies = self.dice.below(2) == 0;
                let taken = self.character(
                    v,
                    Some(&cast),
                    CharacterEvent::DamageTaken {
                        attacker,
                        cause: cast.clone(),
                        skill: "strike".into(),
                        amount: 50,
                        damage: 48,
                        hp_before: if dies { 48 } else { 100 },
                        hp_after: if dies { 0 } else { 52 },
                        zone: zone.clone(),
                        taken_at: later,
                    },
                );
                if dies {
                    let bounty_xp = u64::from(self.heroes[v].level) * 10;
                    let died = self.character(
                        v,
                        Some(&taken),
                        CharacterEvent::CharacterDied {
                            killer: Some(attacker),
                            cause: taken.clone(),
                            zone: zone.clone(),
                            bounty_xp,
                            died_at: later,
                        },
                    );
                    let victim_id = victim.to_string();
                    self.gain(
                        h,
                        Some(&died),
                        bounty_xp,
                        format!("pvp-kill:{victim_id}"),
                        later,
                    );
                    // The victim comes back later, by its own hand.
                    self.character(
                        v,
                        None,
                        CharacterEvent::CharacterRespawned {
                            from_zone: zone,
                            zone: "starter_meadow".into(),
                            hp: 100,
                            mana: 40,
                            respawned_at: later + Duration::seconds(1),
                        },
                    );
                }
            }
            5 => {
                let recipes: Vec<String> = self.content.recipes.keys().cloned().collect();
                // Leather vests are never crafted: the answer must list them with 0.
                let recipe = recipes[self.dice.below(recipes.len() as u64) as usize].clone();
                if recipe == "leather_vest" {
                    return self.travel(h, at);
                }
                let def = self.content.recipes[&recipe].clone();
                let consumed = def
                    .ingredients
                    .iter()
                    .map(|i| ItemChange {
                        item: i.item.clone(),
                        quantity: i.quantity,
                        quantity_after: 0,
                    })
                    .collect();
                let produced = ItemChange {
                    item: def.produces.item.clone(),
                    quantity: def.produces.quantity,
                    quantity_after: def.produces.quantity,
                };
                self.character(
                    h,
                    None,
                    CharacterEvent::ItemCrafted {
                        recipe,
                        consumed,
                        produced,
                        crafted_at: at,
                    },
                );
            }
            6 => {
                let hero = &self.heroes[h];
                if hero.gold == 0 {
                    return self.grant(h, None, Currency::Gold, 25, "quest:wolves", at);
                }
                let amount = 1 + self.dice.below(hero.gold);
                let sink = ["vendor:health_potion", "repair"][self.dice.below(2) as usize];
                self.heroes[h].gold -= amount;
                let balance_after = self.heroes[h].gold;
                self.wallet(
                    h,
                    None,
                    WalletEvent::CurrencySpent {
                        currency: Currency::Gold,
                        amount,
                        balance_after,
                        sink: sink.into(),
                        reference: format!("order-{}", self.events.len()),
                        spent_at: at,
                    },
                );
            }
            7 => self.grant(h, None, Currency::Gems, 5, "purchase", at),
            _ => self.travel(h, at),
        }
    }

    fn travel(&mut self, h: usize, at: DateTime<Utc>) {
        let zones: Vec<String> = self.content.zones.keys().cloned().collect();
        let to = zones[self.dice.below(zones.len() as u64) as usize].clone();
        let from = std::mem::replace(&mut self.heroes[h].zone, to.clone());
        self.character(
            h,
            None,
            CharacterEvent::ZoneEntered {
                from_zone: from,
                to_zone: to,
                entered_at: at,
            },
        );
    }
}

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::days(n)
}

/// 16 characters over five days; nobody plays on the fourth. Sessions of 3 to 12 own actions a
/// few seconds to 25 minutes apart (and now and then exactly the gap: still the same session),
/// separated by more than the gap.
fn history() -> History {
    let mut h = History {
        content: Content::builtin().unwrap(),
        dice: Dice(20_261_101),
        heroes: Vec::new(),
        events: Vec::new(),
    };
    for n in 0..16 {
        h.create(n, day(0) + Duration::minutes(n as i64 * 7));
    }
    let gap = i64::from(SESSION_GAP_MINUTES) * 60;
    // Each character's clock; the actions are generated in time order across characters.
    let mut clocks: Vec<DateTime<Utc>> = (0..16)
        .map(|n| day(0) + Duration::hours(1 + n as i64))
        .collect();
    let mut left: Vec<u64> = (0..16).map(|_| 0).collect();
    let mut sessions: Vec<u64> = (0..16).map(|_| 0).collect();
    while let Some(n) = (0..16)
        .filter(|&n| sessions[n] < 4)
        .min_by_key(|&n| clocks[n])
    {
        let at = clocks[n];
        h.act(n, at);
        if left[n] == 0 {
            left[n] = 3 + h.dice.below(10);
        }
        left[n] -= 1;
        clocks[n] = if left[n] == 0 {
            sessions[n] += 1;
            // Past the gap; nobody plays on day 3 (2026-11-04): a session that would start
            // there, or late enough before it to run into it, starts on day 4 instead.
            let next = at + Duration::seconds(gap + 1 + h.dice.below(30 * 3600) as i64);
            if next >= day(3) - Duration::hours(6) && next < day(4) {
                day(4) + Duration::minutes(n as i64)
            } else {
                next
            }
        } else if h.dice.below(12) == 0 {
            at + Duration::seconds(gap)
        } else {
            at + Duration::seconds(2 + h.dice.below(25 * 60) as i64)
        };
    }
    h
}

// ------------------------------------------------------------------------------------------------
// What the history implies, computed from the events.

struct Expected {
    answers: BTreeMap<&'static str, Vec<Vec<Cell>>>,
}

fn expected(h: &History) -> Expected {
    let events = &h.events;
    let class_of: BTreeMap<String, &Hero> =
        h.heroes.iter().map(|x| (x.id.to_string(), x)).collect();
    let own = |e: &&PublishedEvent| {
        e.envelope.aggregate_type == "character" && e.envelope.causation_id.is_none()
    };
    let first = events
        .iter()
        .map(|e| e.envelope.occurred_at.date_naive())
        .min()
        .unwrap();
    let last = events
        .iter()
        .map(|e| e.envelope.occurred_at.date_naive())
        .max()
        .unwrap();
    let mut answers = BTreeMap::new();

    let mut active: BTreeMap<NaiveDate, BTreeSet<&str>> = BTreeMap::new();
    let mut d = first;
    while d <= last {
        active.insert(d, BTreeSet::new());
        d = d.succ_opt().unwrap();
    }
    for e in events.iter().filter(own) {
        active
            .get_mut(&e.envelope.occurred_at.date_naive())
            .unwrap()
            .insert(&e.envelope.aggregate_id);
    }
    assert!(
        active.values().any(BTreeSet::is_empty),
        "the history has a day without play"
    );
    answers.insert(
        "daily_active_characters",
        active
            .iter()
            .map(|(d, s)| vec![Cell::Day(*d), int(s.len() as i64)])
            .collect(),
    );

    let mut flows: BTreeMap<(NaiveDate, &str, String), (i64, i64)> = BTreeMap::new();
    let mut net: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    for e in events {
        let (dir, reason, amount, at) = match &e.event {
            AnyEvent::Wallet(WalletEvent::CurrencyGranted {
                currency: Currency::Gold,
                amount,
                source,
                granted_at,
                ..
            }) => ("source", source, *amount as i64, granted_at),
            AnyEvent::Wallet(WalletEvent::CurrencySpent {
                currency: Currency::Gold,
                amount,
                sink,
                spent_at,
                ..
            }) => ("sink", sink, *amount as i64, spent_at),
            _ => continue,
        };
        let f = flows
            .entry((at.date_naive(), dir, reason.clone()))
            .or_default();
        f.0 += 1;
        f.1 += amount;
        let n = net.entry(at.date_naive()).or_default();
        if dir == "source" {
            n.0 += amount
        } else {
            n.1 += amount
        }
    }
    answers.insert(
        "gold_flows_by_day",
        flows
            .iter()
            .map(|((d, dir, r), (c, s))| vec![Cell::Day(*d), text(dir), text(r), int(*c), int(*s)])
            .collect(),
    );
    answers.insert(
        "gold_net_by_day",
        net.iter()
            .map(|(d, (i, o))| {
                vec![
                    Cell::Day(*d),
                    if *i == 0 { Cell::Null } else { int(*i) },
                    int(*o),
                    int(i - o),
                ]
            })
            .collect(),
    );

    let mut kills: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut pvp: BTreeMap<String, i64> = BTreeMap::new();
    let mut crafts: BTreeMap<String, (i64, i64, i64)> = h
        .content
        .recipes
        .keys()
        .map(|r| (r.clone(), (0, 0, 0)))
        .collect();
    let mut reached: BTreeMap<String, u8> = BTreeMap::new();
    for e in events {
        let who = &e.envelope.aggregate_id;
        match &e.event {
            AnyEvent::Character(CharacterEvent::NpcKilled {
                zone, xp_reward, ..
            }) => {
                let k = kills
                    .entry((class_of[who].class.clone(), zone.clone()))
                    .or_default();
                k.0 += 1;
                k.1 += i64::from(*xp_reward);
            }
            AnyEvent::Character(CharacterEvent::CharacterDied {
                killer: Some(k), ..
            }) => *pvp.entry(k.to_string()).or_default() += 1,
            AnyEvent::Character(CharacterEvent::ItemCrafted {
                recipe,
                consumed,
                produced,
                ..
            }) => {
                let c = crafts.get_mut(recipe).unwrap();
                c.0 += 1;
                c.1 += i64::from(produced.quantity);
                c.2 += consumed.iter().map(|i| i64::from(i.quantity)).sum::<i64>();
            }
            AnyEvent::Character(CharacterEvent::CharacterCreated { level, .. }) => {
                reached.entry(who.clone()).or_insert(*level);
            }
            AnyEvent::Character(CharacterEvent::LeveledUp { level, .. }) => {
                let r = reached.entry(who.clone()).or_insert(1);
                *r = (*r).max(*level);
            }
            _ => {}
        }
    }
    answers.insert(
        "kills_by_class_and_zone",
        kills
            .iter()
            .map(|((c, z), (n, xp))| vec![text(c), text(z), int(*n), int(*xp)])
            .collect(),
    );
    let mut leaders: Vec<(&String, &i64)> = pvp.iter().collect();
    leaders.sort_by(|a, b| {
        b.1.cmp(a.1)
            .then_with(|| class_of[a.0].name.cmp(&class_of[b.0].name))
    });
    assert!(leaders.len() > 10, "the leader board must cut at 10");
    answers.insert(
        "pvp_kill_leaders",
        leaders
            .iter()
            .take(10)
            .map(|(id, n)| {
                let hero = class_of[id.as_str()];
                vec![text(id), text(&hero.name), text(&hero.class), int(**n)]
            })
            .collect(),
    );
    let mut by_recipe: Vec<(&String, &(i64, i64, i64))> = crafts.iter().collect();
    by_recipe.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(b.0)));
    assert_eq!(crafts["leather_vest"].0, 0, "one recipe is never crafted");
    answers.insert(
        "crafting_by_recipe",
        by_recipe
            .iter()
            .map(|(r, (n, p, i))| {
                vec![
                    text(r),
                    text(&h.content.recipes[r.as_str()].name),
                    int(*n),
                    int(*p),
                    int(*i),
                ]
            })
            .collect(),
    );

    // Sessions: a character's own actions in time order, cut where the gap exceeds 30 minutes.
    let gap = Duration::minutes(SESSION_GAP_MINUTES.into());
    let mut times: BTreeMap<&str, Vec<DateTime<Utc>>> = BTreeMap::new();
    for e in events.iter().filter(own) {
        times
            .entry(&e.envelope.aggregate_id)
            .or_default()
            .push(e.envelope.occurred_at);
    }
    let mut by_class: BTreeMap<String, (i64, f64, f64)> = BTreeMap::new();
    let mut at_gap = 0;
    for (who, mut ts) in times {
        ts.sort();
        let mut start = 0;
        for i in 1..=ts.len() {
            if i < ts.len() && ts[i] - ts[i - 1] == gap {
                at_gap += 1;
            }
            if i == ts.len() || ts[i] - ts[i - 1] > gap {
                let c = by_class.entry(class_of[who].class.clone()).or_default();
                c.0 += 1;
                c.1 += (ts[i - 1] - ts[start]).num_milliseconds() as f64 / 1000.0;
                c.2 += (i - start) as f64;
                start = i;
            }
        }
    }
    assert!(
        at_gap > 0,
        "some actions are exactly the gap apart (same session)"
    );
    answers.insert(
        "session_length_by_class",
        by_class
            .iter()
            .map(|(c, (n, d, a))| {
                vec![
                    text(c),
                    int(*n),
                    Cell::Float(d / *n as f64),
                    Cell::Float(a / *n as f64),
                ]
            })
            .collect(),
    );

    let mut levels: BTreeMap<u8, i64> = BTreeMap::new();
    for l in reached.values() {
        *levels.entry(*l).or_default() += 1;
    }
    assert!(levels.len() > 1, "characters reached different levels");
    answers.insert(
        "level_distribution",
        levels.iter().map(|(l, n)| vec![int(*l), int(*n)]).collect(),
    );
    Expected { answers }
}

// ------------------------------------------------------------------------------------------------

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn the_documented_questions_answer_what_the_history_implies() {
    let dir = TempDir(std::env::temp_dir().join(format!("chaos-analytics-{}", Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let h = history();
    let expected = expected(&h);
    let queries = doc_queries("query");
    let names: BTreeSet<&str> = queries.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        expected.answers.keys().copied().collect::<BTreeSet<_>>(),
        "every documented question is checked"
    );

    let warehouse =
        Warehouse::open_with_content(dir.0.join("warehouse.duckdb"), Arc::new(h.content.clone()))
            .await
            .unwrap();
    let sink: &dyn ProjectionSink = &warehouse;
    // Streams interleaved as Kafka's partitions would (each stream in order, the streams in no
    // order between them), in uneven batches, one of them delivered twice.
    let mut feed: Vec<PublishedEvent> = h.events.clone();
    feed.sort_by_key(|e| {
        (
            e.envelope.aggregate_id.as_bytes()[e.envelope.aggregate_id.len() - 1] % 3,
            e.envelope.global_position,
        )
    });
    let mut offset = 0;
    let mut size = 1;
    while offset < feed.len() {
        let end = (offset + size).min(feed.len());
        let checkpoint = [FeedOffset::new(STORE_FEED, 0, end as i64)];
        sink.apply_batch(&feed[offset..end], &checkpoint)
            .await
            .unwrap();
        if size % 10 == 0 {
            sink.apply_batch(&feed[offset..end], &checkpoint)
                .await
                .unwrap();
        }
        offset = end;
        size = size * 3 % 250 + 1;
    }

    let conn = warehouse.connect().await.unwrap();
    for (name, sql) in &queries {
        assert_rows(name, &run(&conn, sql), &expected.answers[name.as_str()]);
    }

    // The same questions on the Parquet export, through the documented views.
    let out = dir.0.join("parquet");
    warehouse.export_parquet(&out).await.unwrap();
    let parquet = duckdb::Connection::open_in_memory().unwrap();
    let setup = &doc_queries("query-setup")["parquet_views"];
    parquet
        .execute_batch(&setup.replace("DIR", out.to_str().unwrap()))
        .unwrap();
    for (name, sql) in &queries {
        assert_rows(
            &format!("{name} (Parquet)"),
            &run(&parquet, sql),
            &expected.answers[name.as_str()],
        );
    }
    drop(conn);
    warehouse.close().await.unwrap();
}
