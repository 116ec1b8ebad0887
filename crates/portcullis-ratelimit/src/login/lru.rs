//! A map that remembers the order of its writes, so the oldest entry can be dropped
//! in O(1): a hash map into a slab of nodes linked from oldest to newest.

use std::{collections::HashMap, hash::Hash};

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Node<K, V> {
    key: K,
    value: V,
    prev: usize,
    next: usize,
}

#[derive(Debug)]
pub(super) struct Lru<K, V> {
    index: HashMap<K, usize, foldhash::fast::RandomState>,
    nodes: Vec<Node<K, V>>,
    free: Vec<usize>,
    oldest: usize,
    newest: usize,
}

impl<K: Hash + Eq + Copy, V: Copy> Lru<K, V> {
    pub(super) fn new() -> Self {
        Self {
            index: HashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            oldest: NIL,
            newest: NIL,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    pub(super) fn get(&self, key: &K) -> Option<V> {
        self.index.get(key).map(|&i| self.nodes[i].value)
    }

    /// Writes `value` under `key` and makes it the newest entry.
    pub(super) fn put(&mut self, key: K, value: V) {
        if let Some(&i) = self.index.get(&key) {
            self.nodes[i].value = value;
            self.unlink(i);
            self.link_newest(i);
            return;
        }
        let node = Node {
            key,
            value,
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
        self.index.insert(key, i);
        self.link_newest(i);
    }

    /// Writes `value` under `key` without changing its place (a refund is not news).
    pub(super) fn replace(&mut self, key: &K, value: V) {
        if let Some(&i) = self.index.get(key) {
            self.nodes[i].value = value;
        }
    }

    pub(super) fn remove(&mut self, key: &K) {
        if let Some(i) = self.index.remove(key) {
            self.unlink(i);
            self.free.push(i);
        }
    }

    /// The entry written longest ago.
    pub(super) fn oldest(&self) -> Option<(K, V)> {
        (self.oldest != NIL).then(|| {
            let n = &self.nodes[self.oldest];
            (n.key, n.value)
        })
    }

    /// Drops the oldest entries, at most `at_most` of them, toward `len` entries.
    pub(super) fn trim(&mut self, len: usize, at_most: usize) {
        for _ in 0..at_most {
            if self.len() <= len {
                return;
            }
            let Some((key, _)) = self.oldest() else {
                return;
            };
            self.remove(&key);
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.nodes[i].prev, self.nodes[i].next);
        match prev {
            NIL => self.oldest = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NIL => self.newest = prev,
            n => self.nodes[n].prev = prev,
        }
    }

    fn link_newest(&mut self, i: usize) {
        self.nodes[i].prev = self.newest;
        self.nodes[i].next = NIL;
        match self.newest {
            NIL => self.oldest = i,
            n => self.nodes[n].next = i,
        }
        self.newest = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_write_goes_first() {
        let mut lru = Lru::new();
        for k in 0..4u32 {
            lru.put(k, k * 10);
        }
        lru.put(0, 1); // rewritten: now the newest
        lru.replace(&1, 11); // a quiet change keeps its place
        assert_eq!(lru.oldest(), Some((1, 11)));
        lru.trim(2, 1);
        assert_eq!(lru.len(), 3, "one at a time");
        lru.trim(2, 5);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.get(&1), None);
        assert_eq!(lru.get(&2), None);
        assert_eq!(lru.oldest(), Some((3, 30)));
        assert_eq!(lru.get(&0), Some(1));
    }

    #[test]
    fn slots_are_reused() {
        let mut lru = Lru::new();
        for round in 0..100u32 {
            lru.put(round, round);
            lru.trim(3, 1);
        }
        assert_eq!(lru.len(), 3);
        assert!(lru.nodes.len() <= 4, "{}", lru.nodes.len());
        lru.remove(&99);
        lru.remove(&98);
        lru.remove(&97);
        assert_eq!(lru.oldest(), None);
        lru.put(7, 7);
        assert_eq!(lru.oldest(), Some((7, 7)));
    }
}
