//! The bag and the equipment: using, equipping, unequipping, destroying, crafting, granting.
//!
//! The bag holds quantities by item; its capacity counts slots, each holding one stack of up to
//! the item's `stack_size` (`Content::slots_for`). A change may not leave the bag over capacity
//! — unless it was already over (the content shrank a stack size or the bag) and the change does
//! not make that worse, so a player can always unequip, destroy or use their way out.

use std::collections::BTreeMap;

use super::decide::{hp_at, label, mana_at, stats};
use super::{CharacterError, CharacterEvent, CharacterState, ItemChange, MAX_ITEM_QUANTITY};
use crate::aggregate::Ctx;
use crate::content::{Content, ItemDef, Slot};

/// A planned bag: the state's quantities with this decision's changes.
pub(super) struct Bag<'a> {
    content: &'a Content,
    before: &'a BTreeMap<String, u32>,
    items: BTreeMap<String, u32>,
    used_before: u32,
}

impl<'a> Bag<'a> {
    pub(super) fn of(state: &'a CharacterState, content: &'a Content) -> Self {
        let used_before = slots_used(content, &state.bag);
        Self {
            content,
            before: &state.bag,
            items: state.bag.clone(),
            used_before,
        }
    }

    fn capacity(&self) -> u32 {
        self.content.progression.bag_capacity
    }

    fn fits(&self) -> bool {
        let used = slots_used(self.content, &self.items);
        used <= self.capacity() || used <= self.used_before
    }

    pub(super) fn quantity(&self, item: &str) -> u32 {
        self.items.get(item).copied().unwrap_or(0)
    }

    fn set(&mut self, item: &str, quantity: u32) {
        if quantity == 0 {
            self.items.remove(item);
        } else {
            self.items.insert(item.to_owned(), quantity);
        }
    }

    /// Adds `quantity`; the quantity after, or `bag-full`.
    pub(super) fn add(&mut self, item: &str, quantity: u32) -> Result<u32, CharacterError> {
        let full = CharacterError::BagFull {
            capacity: self.capacity(),
        };
        let before = self.quantity(item);
        let after = before.checked_add(quantity).ok_or(full.clone())?;
        self.set(item, after);
        if !self.fits() {
            self.set(item, before);
            return Err(full);
        }
        Ok(after)
    }

    /// Adds as much of `quantity` as fits; how much that was.
    pub(super) fn add_up_to(&mut self, item: &str, quantity: u32) -> u32 {
        (0..=quantity)
            .rev()
            .find(|q| *q == 0 || self.add(item, *q).is_ok())
            .unwrap_or(0)
    }

    /// Takes `quantity` out; the quantity after, or `insufficient-items`.
    pub(super) fn remove(&mut self, item: &str, quantity: u32) -> Result<u32, CharacterError> {
        let available = self.quantity(item);
        let after =
            available
                .checked_sub(quantity)
                .ok_or_else(|| CharacterError::InsufficientItems {
                    item: item.to_owned(),
                    needed: quantity,
                    available,
                })?;
        self.set(item, after);
        Ok(after)
    }

    pub(super) fn check(&self) -> Result<(), CharacterError> {
        if self.fits() {
            Ok(())
        } else {
            Err(CharacterError::BagFull {
                capacity: self.capacity(),
            })
        }
    }

    /// Every item whose quantity rose, with the rise: what this plan acquires.
    pub(super) fn changes_in(&self) -> Vec<ItemChange> {
        self.items
            .iter()
            .filter_map(|(item, after)| {
                let before = self.before.get(item).copied().unwrap_or(0);
                (*after > before).then(|| ItemChange {
                    item: item.clone(),
                    quantity: after - before,
                    quantity_after: *after,
                })
            })
            .collect()
    }
}

/// Slots the bag's stacks take under `content`.
pub(super) fn slots_used(content: &Content, bag: &BTreeMap<String, u32>) -> u32 {
    bag.iter()
        .map(|(item, q)| content.slots_for(item, *q))
        .fold(0u32, u32::saturating_add)
}

fn quantity_ok(quantity: u32) -> Result<(), CharacterError> {
    if quantity == 0 || quantity > MAX_ITEM_QUANTITY {
        return Err(CharacterError::InvalidQuantity {
            max: MAX_ITEM_QUANTITY,
        });
    }
    Ok(())
}

/// The catalogue entry of an item the player names: `unknown-item` if neither the content nor
/// the bag knows it, `content-unavailable` if only the bag does (the content dropped it).
fn item_def<'c>(
    state: &CharacterState,
    content: &'c Content,
    item: &str,
) -> Result<&'c ItemDef, CharacterError> {
    match content.items.get(item) {
        Some(def) => Ok(def),
        None if state.quantity(item) > 0 || state.equipment.values().any(|i| i == item) => {
            Err(CharacterError::ContentUnavailable {
                kind: "item",
                id: item.to_owned(),
            })
        }
        None => Err(CharacterError::UnknownItem(item.to_owned())),
    }
}

pub(super) fn use_item(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    item: String,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    let def = item_def(state, ctx.content, &item)?;
    let effect = def
        .effect
        .ok_or_else(|| CharacterError::ItemNotUsable(item.clone()))?;
    let mut bag = Bag::of(state, ctx.content);
    let quantity_after = bag.remove(&item, 1)?;
    let stats = stats(state, ctx.content)?;
    let hp_before = hp_at(state, &stats, ctx.now);
    let mana_before = mana_at(state, &stats, ctx.now);
    Ok(vec![CharacterEvent::ItemUsed {
        item,
        quantity_after,
        hp_before,
        hp_after: hp_before
            .saturating_add(effect.restore_hp)
            .min(stats.max_hp),
        mana_before,
        mana_after: mana_before
            .saturating_add(effect.restore_mana)
            .min(stats.max_mana),
        used_at: ctx.now,
    }])
}

pub(super) fn equip(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    item: String,
    slot: Slot,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    let content = ctx.content;
    let def = item_def(state, content, &item)?;
    let props = def
        .equip
        .as_ref()
        .ok_or_else(|| CharacterError::ItemNotEquippable(item.clone()))?;
    if props.slot != slot {
        return Err(CharacterError::WrongSlot {
            item,
            slot,
            expected: props.slot,
        });
    }
    if state.level < props.required_level {
        return Err(CharacterError::ItemLevelTooHigh {
            item,
            required_level: props.required_level,
        });
    }
    if !props.open_to(&state.class) {
        return Err(CharacterError::ItemClassRestricted { item });
    }
    let mut bag = Bag::of(state, content);
    let quantity_after = bag.remove(&item, 1)?;
    let replaced = match state.equipment.get(&slot) {
        Some(old) => Some(ItemChange {
            item: old.clone(),
            quantity: 1,
            quantity_after: bag.add(old, 1)?,
        }),
        None => None,
    };
    bag.check()?;
    let mut equipment = state.equipment.clone();
    equipment.insert(slot, item.clone());
    let (max_hp, max_mana, hp, mana) = resources_with(state, ctx, &equipment)?;
    Ok(vec![CharacterEvent::ItemEquipped {
        item,
        slot,
        quantity_after,
        replaced,
        max_hp,
        max_mana,
        hp,
        mana,
        equipped_at: ctx.now,
    }])
}

pub(super) fn unequip(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    slot: Slot,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    let item = state
        .equipment
        .get(&slot)
        .ok_or(CharacterError::SlotEmpty(slot))?
        .clone();
    let mut bag = Bag::of(state, ctx.content);
    let quantity_after = bag.add(&item, 1)?;
    let mut equipment = state.equipment.clone();
    equipment.remove(&slot);
    let (max_hp, max_mana, hp, mana) = resources_with(state, ctx, &equipment)?;
    Ok(vec![CharacterEvent::ItemUnequipped {
        item,
        slot,
        quantity_after,
        max_hp,
        max_mana,
        hp,
        mana,
        unequipped_at: ctx.now,
    }])
}

/// Maxima with `equipment`, and hit points and mana now (regenerated under the current stats,
/// then capped by the new maxima).
fn resources_with(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    equipment: &BTreeMap<Slot, String>,
) -> Result<(u32, u32, u32, u32), CharacterError> {
    let current = stats(state, ctx.content)?;
    let next = ctx
        .content
        .stats_of(&state.class, state.level, equipment.values())
        .ok_or_else(|| CharacterError::ContentUnavailable {
            kind: "class",
            id: state.class.clone(),
        })?;
    let hp = hp_at(state, &current, ctx.now).min(next.max_hp);
    let mana = mana_at(state, &current, ctx.now).min(next.max_mana);
    Ok((next.max_hp, next.max_mana, hp, mana))
}

pub(super) fn destroy(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    item: String,
    quantity: u32,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    quantity_ok(quantity)?;
    if state.quantity(&item) == 0 && !ctx.content.items.contains_key(&item) {
        return Err(CharacterError::UnknownItem(item));
    }
    let quantity_after = Bag::of(state, ctx.content).remove(&item, quantity)?;
    Ok(vec![CharacterEvent::ItemDestroyed {
        item,
        quantity,
        quantity_after,
        destroyed_at: ctx.now,
    }])
}

pub(super) fn craft(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    recipe: String,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    let content = ctx.content;
    let def = content
        .recipes
        .get(&recipe)
        .ok_or_else(|| CharacterError::UnknownRecipe(recipe.clone()))?;
    if state.level < def.required_level {
        return Err(CharacterError::RecipeLevelTooHigh {
            recipe,
            required_level: def.required_level,
        });
    }
    let mut bag = Bag::of(state, content);
    let mut consumed = Vec::with_capacity(def.ingredients.len());
    for ingredient in &def.ingredients {
        consumed.push(ItemChange {
            item: ingredient.item.clone(),
            quantity: ingredient.quantity,
            quantity_after: bag.remove(&ingredient.item, ingredient.quantity)?,
        });
    }
    let produced = ItemChange {
        item: def.produces.item.clone(),
        quantity: def.produces.quantity,
        quantity_after: bag.add(&def.produces.item, def.produces.quantity)?,
    };
    Ok(vec![CharacterEvent::ItemCrafted {
        recipe,
        consumed,
        produced,
        crafted_at: ctx.now,
    }])
}

pub(super) fn grant(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    item: String,
    quantity: u32,
    source: String,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    label("source", &source)?;
    quantity_ok(quantity)?;
    if !ctx.content.items.contains_key(&item) {
        return Err(CharacterError::UnknownItem(item));
    }
    let quantity_after = Bag::of(state, ctx.content).add(&item, quantity)?;
    Ok(vec![CharacterEvent::ItemsAcquired {
        items: vec![ItemChange {
            item,
            quantity,
            quantity_after,
        }],
        source: format!("grant:{source}"),
        acquired_at: ctx.now,
    }])
}
