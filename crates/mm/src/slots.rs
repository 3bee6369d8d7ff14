//! Tables of values by id, in slots: a lookup is an index, not a search
//! (the page-fault path looks its address space and its object up on
//! every fault, each mapping call its space). An id is a slot number and,
//! in its high 32 bits, the slot's generation, which changes when the
//! slot's value goes: an old id finds nothing.
//!
//! Each value lives in its own heap block; a slot holds a pointer to it
//! (16 bytes with the generation). So the vector of slots, which grows by
//! doubling into one new block, stays small: the values themselves fill
//! the kernel heap long before it could ask for more than a few MiB at
//! once. (Slots holding the values doubled in one block: with 65,536
//! memory objects of 752 bytes, one program's touched mappings, the
//! vector asked for 98 MiB at once, more than the whole kernel heap, and
//! the kernel panicked.) A value can be made in its block and taken out
//! with it ([`SlotTable::insert_boxed`], [`SlotTable::remove_boxed`]): a
//! memory object is 752 bytes, whose copies in and out cost more than the
//! block.

use crate::hw::{AsId, ObjectId};
use alloc::boxed::Box;
use alloc::vec::Vec;

/// An id a [`SlotTable`] gives out (slot and generation in one `u64`).
pub(crate) trait SlotId: Copy {
    fn from_raw(raw: u64) -> Self;
    fn raw(self) -> u64;
}

impl SlotId for ObjectId {
    fn from_raw(raw: u64) -> Self {
        ObjectId(raw)
    }
    fn raw(self) -> u64 {
        self.0
    }
}

impl SlotId for AsId {
    fn from_raw(raw: u64) -> Self {
        AsId(raw)
    }
    fn raw(self) -> u64 {
        self.0
    }
}

/// Values by id; see the module documentation.
pub(crate) struct SlotTable<K, T> {
    slots: Vec<Slot<T>>,
    /// Free slot numbers; its capacity always covers every slot, so
    /// removing never allocates.
    free: Vec<u32>,
    live: usize,
    _ids: core::marker::PhantomData<K>,
}

impl<K, T> Default for SlotTable<K, T> {
    fn default() -> Self {
        SlotTable {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            _ids: core::marker::PhantomData,
        }
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<Box<T>>,
}

impl<K: SlotId, T> SlotTable<K, T> {
    fn slot_of(id: &K) -> (usize, u32) {
        let raw = id.raw();
        ((raw & 0xffff_ffff) as usize, (raw >> 32) as u32)
    }

    fn id_of(index: usize, generation: u32) -> K {
        K::from_raw(u64::from(generation) << 32 | index as u64)
    }

    pub(crate) fn get(&self, id: &K) -> Option<&T> {
        let (index, generation) = Self::slot_of(id);
        let slot = self.slots.get(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_deref()
    }

    pub(crate) fn get_mut(&mut self, id: &K) -> Option<&mut T> {
        let (index, generation) = Self::slot_of(id);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_deref_mut()
    }

    pub(crate) fn contains_key(&self, id: &K) -> bool {
        self.get(id).is_some()
    }

    /// Stores `value` in a free slot; returns its id.
    pub(crate) fn insert(&mut self, value: T) -> K {
        self.insert_boxed(Box::new(value))
    }

    /// [`Self::insert`] of a value already in its block (made there, not
    /// copied in).
    pub(crate) fn insert_boxed(&mut self, value: Box<T>) -> K {
        self.live += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            return Self::id_of(index as usize, slot.generation);
        }
        let index = self.slots.len();
        self.slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        self.free.reserve(self.slots.len() - self.free.len());
        Self::id_of(index, 0)
    }

    pub(crate) fn remove(&mut self, id: &K) -> Option<T> {
        self.remove_boxed(id).map(|value| *value)
    }

    /// [`Self::remove`], the value left in its block (not copied out).
    pub(crate) fn remove_boxed(&mut self, id: &K) -> Option<Box<T>> {
        let (index, generation) = Self::slot_of(id);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u32);
        self.live -= 1;
        Some(value)
    }

    /// An upper bound of the bytes the table asks the heap for while
    /// `more` values are inserted: the slot and free vectors each grown
    /// once into a new block (by doubling) while the old one still lives,
    /// and each value's own block.
    pub(crate) fn growth_bytes_bound(&self, more: usize) -> usize {
        let slots = (self.slots.len() + more).next_power_of_two();
        slots * (core::mem::size_of::<Slot<T>>() + core::mem::size_of::<u32>())
            + more * core::mem::size_of::<T>()
    }

    /// Number of live values.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Every live value with its id, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &T)> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let value = slot.value.as_deref()?;
            Some((Self::id_of(index, slot.generation), value))
        })
    }
}

/// How many times [`SpaceTable::space_write_briefly`] looks.
const SPACE_LOOKS: u32 = 64;

/// The address spaces' table: each space behind its own reader-writer lock
/// (`shared_map.rs`). Paths that have the whole system exclusively reach a
/// space through [`Self::get_mut`] (no lock word touched) or, from `&self`,
/// through [`Self::get`], which never waits there: only calls made with
/// shared access to the system take a space's lock for writing, and none
/// runs while the system is held exclusively.
pub(crate) type SpaceTable =
    SlotTable<crate::hw::AsId, spin::RwLock<crate::address_space::AddressSpace>>;

impl SlotTable<crate::hw::AsId, spin::RwLock<crate::address_space::AddressSpace>> {
    /// Space `id` for reading (see the type's documentation).
    #[inline]
    pub(crate) fn space(
        &self,
        id: &crate::hw::AsId,
    ) -> Option<spin::RwLockReadGuard<'_, crate::address_space::AddressSpace>> {
        Some(self.get(id)?.read())
    }

    /// Space `id` for writing, by a call made with shared access to the
    /// system: another such call holds a space's lock only for a short
    /// while, so it is looked at a few times (each a `pause`) before the
    /// caller gives up and goes the exclusive way. It never waits longer:
    /// the holder may be waiting for this CPU's TLB flush.
    pub(crate) fn space_write_briefly(
        &self,
        id: &crate::hw::AsId,
    ) -> Option<spin::RwLockWriteGuard<'_, crate::address_space::AddressSpace>> {
        let lock = self.get(id)?;
        for _ in 0..SPACE_LOOKS {
            if let Some(guard) = lock.try_write() {
                return Some(guard);
            }
            core::hint::spin_loop();
        }
        None
    }

    /// Space `id` for reading, by a fault resolved with shared access: a
    /// call holding its lock for writing holds it briefly, so it is looked
    /// at a few times as [`Self::space_write_briefly`] looks (never
    /// longer: the holder may be waiting for this CPU's TLB flush).
    #[inline]
    pub(crate) fn space_read_briefly(
        &self,
        id: &crate::hw::AsId,
    ) -> Option<spin::RwLockReadGuard<'_, crate::address_space::AddressSpace>> {
        let lock = self.get(id)?;
        for _ in 0..SPACE_LOOKS {
            if let Some(guard) = lock.try_read() {
                return Some(guard);
            }
            core::hint::spin_loop();
        }
        None
    }

    /// Space `id`, with the system held exclusively.
    #[inline]
    pub(crate) fn space_mut(
        &mut self,
        id: &crate::hw::AsId,
    ) -> Option<&mut crate::address_space::AddressSpace> {
        self.get_mut(id).map(spin::RwLock::get_mut)
    }
}

#[cfg(test)]
mod tests {
    use super::SlotTable;
    use crate::hw::ObjectId;
    use alloc::vec::Vec;

    /// A value as big as a memory object: the vector holds pointers.
    type Big = [u64; 94];

    #[test]
    fn slots_hold_pointers_and_old_ids_find_nothing() {
        assert_eq!(core::mem::size_of::<super::Slot<Big>>(), 16);
        let mut table: SlotTable<ObjectId, Big> = SlotTable::default();
        let ids: Vec<ObjectId> = (0..1000u64).map(|v| table.insert([v; 94])).collect();
        for id in ids.iter().step_by(3) {
            assert!(table.remove(id).is_some());
        }
        let again: Vec<ObjectId> = (0..334u64).map(|v| table.insert([5000 + v; 94])).collect();
        assert_eq!(table.slots.len(), 1000, "the freed slots were used again");
        for id in ids.iter().step_by(3) {
            assert!(table.get(id).is_none(), "an old id finds nothing");
        }
        for (v, id) in ids.iter().enumerate().filter(|(v, _)| v % 3 != 0) {
            assert_eq!(table.get(id).map(|b| b[93]), Some(v as u64));
        }
        for (v, id) in again.iter().enumerate() {
            assert_eq!(table.get(id).map(|b| b[0]), Some(5000 + v as u64));
        }
        assert_eq!((table.len(), table.iter().count()), (1000, 1000));
        // The bound covers a doubled slot vector and the values' blocks.
        assert!(table.growth_bytes_bound(100) >= 2048 * 16 + 100 * 94 * 8);
    }
}
