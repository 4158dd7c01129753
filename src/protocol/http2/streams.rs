// SPDX-License-Identifier: GPL-3.0-or-later
//! A connection's open streams: a few at a time as a rule (a client keeps
//! up to its peer's SETTINGS_MAX_CONCURRENT_STREAMS open, nginx allows
//! 128, and most connections have one or a handful), so a `Vec` searched
//! by id, newest first, costs less per frame than a `BTreeMap`, whose
//! insertion and removal moved the stream in and out of its nodes. Where
//! the order shows in the records (a GOAWAY's streams, the streams still
//! open at the end, the oldest one dropped at the cap) it is by id, as
//! the `BTreeMap` gave it.

use super::record::Stream;

#[derive(Debug, Default)]
pub(super) struct Streams {
    v: Vec<Stream>,
}

impl Streams {
    fn at(&self, id: u32) -> Option<usize> {
        self.v.iter().rposition(|s| s.id == id)
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn contains(&self, id: u32) -> bool {
        self.at(id).is_some()
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Stream> {
        let i = self.at(id)?;
        Some(&mut self.v[i])
    }

    /// A new stream (its id not open yet).
    pub fn insert(&mut self, s: Stream) {
        debug_assert!(!self.contains(s.id));
        self.v.push(s);
    }

    pub fn remove(&mut self, id: u32) -> Option<Stream> {
        let i = self.at(id)?;
        Some(self.v.swap_remove(i))
    }

    /// The lowest open id.
    pub fn lowest(&self) -> Option<u32> {
        self.v.iter().map(|s| s.id).min()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.v.iter_mut()
    }

    /// The open ids that pass `keep`, ascending.
    pub fn ids(&self, keep: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut ids: Vec<u32> = self.v.iter().map(|s| s.id).filter(|&id| keep(id)).collect();
        ids.sort_unstable();
        ids
    }

    /// Every stream, ascending by id; none left open.
    pub fn take_all(&mut self) -> Vec<Stream> {
        let mut v = std::mem::take(&mut self.v);
        v.sort_unstable_by_key(|s| s.id);
        v
    }
}
