// SPDX-License-Identifier: GPL-3.0-or-later
//! A bounded map whose entries expire.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    map: HashMap<K, (V, Instant)>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(cap: usize) -> Self {
        TtlCache {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// The value, unless expired (an expired entry is dropped).
    pub fn get(&mut self, k: &K, now: Instant) -> Option<V> {
        match self.map.get(k) {
            Some((v, until)) if *until > now => Some(v.clone()),
            Some(_) => {
                self.map.remove(k);
                None
            }
            None => None,
        }
    }

    /// Insert; returns how many entries were dropped to stay under the cap
    /// (the expired ones first, then all: a cache, not a record).
    pub fn insert(&mut self, k: K, v: V, now: Instant, ttl: Duration) -> u64 {
        let mut dropped = 0;
        if self.map.len() >= self.cap && !self.map.contains_key(&k) {
            let before = self.map.len();
            self.map.retain(|_, (_, until)| *until > now);
            if self.map.len() >= self.cap {
                self.map.clear();
            }
            dropped = (before - self.map.len()) as u64;
        }
        self.map.insert(k, (v, now + ttl));
        dropped
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_expiring() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = TtlCache::new(3);
        assert_eq!(c.insert(1, "a", t0, s), 0);
        assert_eq!(c.get(&1, t0), Some("a"));
        assert_eq!(c.get(&1, t0 + s), None);
        assert!(c.is_empty());
        for k in 0..3 {
            c.insert(k, "x", t0, s * 10);
        }
        // full of live entries: all go
        assert_eq!(c.insert(9, "y", t0, s), 3);
        assert_eq!(c.len(), 1);
        for k in 0..10_000 {
            c.insert(k, "z", t0, s);
            assert!(c.len() <= 3);
        }
    }
}
