// SPDX-License-Identifier: GPL-3.0-or-later
//! A least-recently-used map: a hash map into a slab of nodes threaded on
//! a doubly linked list. Lookup, insert, touch, remove and taking the
//! least recently used entry are all constant time, also when the table
//! is full (the connection table evicts once per new connection then).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

const NIL: usize = usize::MAX;

/// A small multiplicative hasher for fixed-size keys the process made
/// itself (connection ids): no attacker chooses them, so SipHash's cost
/// buys nothing per event.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
    fn write_i32(&mut self, v: i32) {
        self.write_u64(v as u32 as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

struct Node<K, V> {
    key: K,
    val: Option<V>,
    prev: usize,
    next: usize,
}

/// Entries ordered from most (`head`) to least (`tail`) recently used.
pub struct Lru<K, V> {
    index: HashMap<K, usize, BuildHasherDefault<FxHasher>>,
    nodes: Vec<Node<K, V>>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
}

impl<K: Hash + Eq + Copy, V> Default for Lru<K, V> {
    fn default() -> Self {
        Lru {
            index: HashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }
}

impl<K: Hash + Eq + Copy, V> Lru<K, V> {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains_key(&self, k: &K) -> bool {
        self.index.contains_key(k)
    }

    /// The value, without changing its recency.
    pub fn get(&self, k: &K) -> Option<&V> {
        let i = *self.index.get(k)?;
        self.nodes[i].val.as_ref()
    }

    /// The value, without changing its recency.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let i = *self.index.get(k)?;
        self.nodes[i].val.as_mut()
    }

    /// The value, made the most recently used.
    pub fn touch(&mut self, k: &K) -> Option<&mut V> {
        let i = self.touch_slot(k)?;
        self.nodes[i].val.as_mut()
    }

    /// [`Lru::touch`], giving the entry's slot for [`Lru::slot_mut`]
    /// (one look-up where a caller would otherwise test for the key first).
    pub fn touch_slot(&mut self, k: &K) -> Option<usize> {
        let i = *self.index.get(k)?;
        if i != self.head {
            self.unlink(i);
            self.push_front(i);
        }
        Some(i)
    }

    /// The value in slot `i` (from [`Lru::touch_slot`], no change since).
    pub fn slot_mut(&mut self, i: usize) -> Option<&mut V> {
        self.nodes.get_mut(i)?.val.as_mut()
    }

    /// Insert as the most recently used; an existing entry is replaced.
    pub fn insert(&mut self, k: K, v: V) {
        if let Some(&i) = self.index.get(&k) {
            self.nodes[i].val = Some(v);
            self.unlink(i);
            self.push_front(i);
            return;
        }
        let node = Node {
            key: k,
            val: Some(v),
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.index.insert(k, i);
        self.push_front(i);
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.index.remove(k)?;
        Some(self.release(i))
    }

    /// Remove and return the least recently used entry.
    pub fn pop_lru(&mut self) -> Option<(K, V)> {
        if self.tail == NIL {
            return None;
        }
        let i = self.tail;
        let k = self.nodes[i].key;
        self.index.remove(&k);
        Some((k, self.release(i)))
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.index.keys()
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.nodes.iter().filter_map(|n| n.val.as_ref())
    }

    /// Take every entry out, in no particular order.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, V)> {
        std::mem::take(self)
            .nodes
            .into_iter()
            .filter_map(|n| n.val.map(|v| (n.key, v)))
    }

    fn release(&mut self, i: usize) -> V {
        self.unlink(i);
        self.free.push(i);
        let v = self.nodes[i].val.take();
        // Every indexed node holds a value: `val` is only taken here,
        // after its key left the index.
        v.expect("an indexed LRU node holds a value")
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.nodes[i].prev, self.nodes[i].next);
        if p == NIL {
            self.head = n;
        } else {
            self.nodes[p].next = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.nodes[n].prev = p;
        }
        self.nodes[i].prev = NIL;
        self.nodes[i].next = NIL;
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].next = self.head;
        self.nodes[i].prev = NIL;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut l = Lru::default();
        for k in 0..4u64 {
            l.insert(k, k * 10);
        }
        l.touch(&0);
        assert_eq!(l.pop_lru(), Some((1, 10)));
        assert_eq!(l.pop_lru(), Some((2, 20)));
        assert_eq!(l.pop_lru(), Some((3, 30)));
        assert_eq!(l.pop_lru(), Some((0, 0)));
        assert_eq!(l.pop_lru(), None);
        assert!(l.is_empty());
    }

    #[test]
    fn get_mut_keeps_order_and_remove_unlinks() {
        let mut l = Lru::default();
        l.insert(1u64, 'a');
        l.insert(2, 'b');
        l.insert(3, 'c');
        *l.get_mut(&1).unwrap() = 'z';
        assert_eq!(l.remove(&2), Some('b'));
        assert_eq!(l.remove(&2), None);
        l.insert(4, 'd'); // reuses the freed slot
        assert_eq!(l.nodes.len(), 3);
        assert_eq!(l.pop_lru(), Some((1, 'z')));
        assert_eq!(l.pop_lru(), Some((3, 'c')));
        assert_eq!(l.pop_lru(), Some((4, 'd')));
    }

    #[test]
    fn matches_a_naive_model() {
        // xorshift-driven operations against a Vec kept in recency order
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut l = Lru::default();
        let mut model: Vec<(u64, u64)> = Vec::new(); // front = most recent
        for step in 0..20_000u64 {
            let k = rnd() % 64;
            match rnd() % 5 {
                0 | 1 => {
                    l.insert(k, step);
                    model.retain(|e| e.0 != k);
                    model.insert(0, (k, step));
                }
                2 => {
                    let got = l.touch(&k).map(|v| *v);
                    let pos = model.iter().position(|e| e.0 == k);
                    assert_eq!(got, pos.map(|p| model[p].1));
                    if let Some(p) = pos {
                        let e = model.remove(p);
                        model.insert(0, e);
                    }
                }
                3 => {
                    let got = l.remove(&k);
                    let pos = model.iter().position(|e| e.0 == k);
                    assert_eq!(got, pos.map(|p| model.remove(p).1));
                }
                _ => assert_eq!(l.pop_lru(), model.pop()),
            }
            assert_eq!(l.len(), model.len());
        }
        let mut rest: Vec<_> = l.drain().collect();
        rest.sort_unstable();
        model.sort_unstable();
        assert_eq!(rest, model);
    }
}
