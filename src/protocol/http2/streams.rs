// SPDX-License-Identifier: GPL-3.0-or-later
//! A connection's open streams: a few at a time as a rule (a client keeps
//! up to its peer's SETTINGS_MAX_CONCURRENT_STREAMS open, nginx allows
//! 128, and most connections have one or a handful), so a `Vec` searched
//! by id, newest first, costs less per frame than a `BTreeMap`, whose
//! insertion and removal moved the stream in and out of its nodes. The
//! ids are kept apart in a `Vec` of their own, so a search reads 4 bytes
//! a stream, not a cache line of each (many streams open: a gRPC
//! client's 100 concurrent calls). Where
//! the order shows in the records (a GOAWAY's streams, the streams still
//! open at the end, the oldest one dropped at the cap) it is by id, as
//! the `BTreeMap` gave it.

use super::record::Stream;

#[derive(Debug, Default)]
pub(super) struct Streams {
    /// `ids[i]` is `v[i].id`.
    ids: Vec<u32>,
    v: Vec<Stream>,
}

impl Streams {
    fn at(&self, id: u32) -> Option<usize> {
        self.ids.iter().rposition(|&i| i == id)
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
        self.ids.push(s.id);
        self.v.push(s);
    }

    pub fn remove(&mut self, id: u32) -> Option<Stream> {
        let i = self.at(id)?;
        self.ids.swap_remove(i);
        Some(self.v.swap_remove(i))
    }

    /// The lowest open id.
    pub fn lowest(&self) -> Option<u32> {
        self.ids.iter().copied().min()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.v.iter_mut()
    }

    /// The open ids that pass `keep`, ascending.
    pub fn ids(&self, keep: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut ids: Vec<u32> = self.ids.iter().copied().filter(|&id| keep(id)).collect();
        ids.sort_unstable();
        ids
    }

    /// Every stream, ascending by id; none left open.
    pub fn take_all(&mut self) -> Vec<Stream> {
        self.ids.clear();
        let mut v = std::mem::take(&mut self.v);
        v.sort_unstable_by_key(|s| s.id);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_by_id_and_ordered_by_id_where_it_shows() {
        let mut s = Streams::default();
        for id in [7, 3, 11, 1, 5] {
            s.insert(Stream::new(id));
        }
        assert_eq!(s.remove(3).map(|x| x.id), Some(3));
        assert!(s.remove(3).is_none());
        assert!(!s.contains(3) && s.contains(5));
        // the swap that filled 3's place kept ids and streams in step
        for id in [7, 11, 1, 5] {
            assert_eq!(s.get_mut(id).map(|x| x.id), Some(id));
        }
        assert_eq!(s.lowest(), Some(1));
        assert_eq!(s.ids(|id| id > 4), [5, 7, 11]);
        assert_eq!(s.len(), 4);
        let all: Vec<u32> = s.take_all().iter().map(|x| x.id).collect();
        assert_eq!(all, [1, 5, 7, 11]);
        assert_eq!((s.len(), s.lowest()), (0, None));
        assert!(s.get_mut(5).is_none());
    }
}
