//! Recording through the `metrics` facade without allocating on the request path.
//!
//! `metrics::counter!` with label values that are not literals builds a `Vec` of labels
//! and looks the series up in the recorder on every call. Here each thread keeps the
//! handles it has registered, found by the addresses of the name and label values
//! (all `&'static str`, so a handful per call site), and bumps them directly: the
//! first call per thread and series registers; later ones find the handle in a small
//! direct-mapped table (one multiply-hash of a few pointers, one comparison) and add.
//! Handles from one recorder are dropped when another is installed (a test's local
//! recorder, or the global one installed after the first request).

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    hash::{BuildHasherDefault, Hash, Hasher},
    sync::{Mutex, PoisonError},
};

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata};

/// The most labels a Portcullis metric has.
const MAX_LABELS: usize = 4;

/// Slots of the direct-mapped table in front of each thread's map (a power of two).
const SLOTS: usize = 64;

/// A series by the addresses and lengths of its name and label values, with a hash of
/// those addresses (the keys are addresses, not attacker-chosen text).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Series {
    hash: u64,
    parts: [(usize, usize); MAX_LABELS + 1],
}

/// A hash of the addresses and lengths of a series' name and label values.
#[inline]
fn hash_of<const N: usize>(name: &'static str, labels: &[(&'static str, &'static str); N]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let word = |text: &str| text.as_ptr() as u64 ^ (text.len() as u64).rotate_right(16);
    let mut hash = word(name).wrapping_mul(K);
    for (_, value) in labels {
        hash = (hash.rotate_left(23) ^ word(value)).wrapping_mul(K);
    }
    hash
}

/// The slot of `hash` in the direct-mapped table: its high bits.
fn slot_of(hash: u64) -> usize {
    (hash >> (64 - SLOTS.trailing_zeros())) as usize
}

impl Series {
    fn new<const N: usize>(name: &'static str, labels: &[(&'static str, &'static str); N]) -> Self {
        const { assert!(N <= MAX_LABELS, "too many labels") };
        let mut parts = [(0, 0); MAX_LABELS + 1];
        parts[0] = (name.as_ptr() as usize, name.len());
        for (part, (_, value)) in parts[1..].iter_mut().zip(labels) {
            *part = (value.as_ptr() as usize, value.len());
        }
        Self {
            hash: hash_of(name, labels),
            parts,
        }
    }
}

impl Hash for Series {
    fn hash<S: Hasher>(&self, state: &mut S) {
        state.write_u64(self.hash);
    }
}

/// Passes on the one `u64` a [`Series`] writes.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }
}

/// One thread's handles of one kind: every one registered, and a direct-mapped table of
/// those used last in front (allocated on first use), found there by the 64-bit hash
/// alone: two of the few dozen series a process has would share one with a
/// probability near 2^-54.
struct Cache<H> {
    slots: Vec<Option<(u64, H)>>,
    all: HashMap<Series, H, BuildHasherDefault<Prehashed>>,
}

impl<H: Clone> Cache<H> {
    const fn new() -> Self {
        Self {
            slots: Vec::new(),
            all: HashMap::with_hasher(BuildHasherDefault::new()),
        }
    }

    /// The handle of the series, registered by `register` the first time.
    #[inline]
    fn get<const N: usize>(
        &mut self,
        name: &'static str,
        labels: &[(&'static str, &'static str); N],
        register: impl FnOnce(&Key) -> H,
    ) -> &H {
        let hash = hash_of(name, labels);
        let slot = slot_of(hash);
        match self.slots.get(slot) {
            Some(Some((h, _))) if *h == hash => {}
            _ => return self.miss(Series::new(name, labels), || register(&key(name, labels))),
        }
        &self.slots[slot].as_ref().expect("a hit").1
    }

    #[cold]
    #[inline(never)]
    fn miss(&mut self, series: Series, register: impl FnOnce() -> H) -> &H {
        if self.slots.is_empty() {
            self.slots = (0..SLOTS).map(|_| None).collect();
        }
        let handle = self.all.entry(series).or_insert_with(register).clone();
        let slot = &mut self.slots[slot_of(series.hash)];
        &slot.insert((series.hash, handle)).1
    }
}

/// One thread's handles, valid for the recorder at `recorder`.
struct Handles {
    recorder: usize,
    counters: Cache<Counter>,
    gauges: Cache<Gauge>,
    histograms: Cache<Histogram>,
}

impl Handles {
    const fn new(recorder: usize) -> Self {
        Self {
            recorder,
            counters: Cache::new(),
            gauges: Cache::new(),
            histograms: Cache::new(),
        }
    }
}

thread_local! {
    static HANDLES: RefCell<Handles> = const { RefCell::new(Handles::new(0)) };
}

static METADATA: Metadata<'static> = Metadata::new("portcullis", Level::INFO, Some(module_path!()));

/// The address of the recorder calls go to now (the no-op one when none is installed).
#[inline]
fn current_recorder() -> usize {
    metrics::with_recorder(|recorder| std::ptr::from_ref(recorder).cast::<()>() as usize)
}

fn key<const N: usize>(name: &'static str, labels: &[(&'static str, &'static str); N]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|&(key, value)| Label::from_static_parts(key, value))
        .collect();
    Key::from_parts(name, labels)
}

/// Runs `f` on this thread's handles for the current recorder.
#[inline]
fn with_handles<T>(f: impl FnOnce(&mut Handles) -> T) -> T {
    let recorder = current_recorder();
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        if handles.recorder != recorder {
            *handles = Handles::new(recorder);
        }
        f(&mut handles)
    })
}

/// Adds `by` to a counter.
#[inline]
pub fn count<const N: usize>(
    name: &'static str,
    labels: [(&'static str, &'static str); N],
    by: u64,
) {
    with_handles(|handles| {
        let register = |key: &Key| metrics::with_recorder(|r| r.register_counter(key, &METADATA));
        handles.counters.get(name, &labels, register).increment(by)
    })
}

/// Sets a gauge.
#[inline]
pub fn gauge<const N: usize>(
    name: &'static str,
    labels: [(&'static str, &'static str); N],
    value: f64,
) {
    with_handles(|handles| {
        let register = |key: &Key| metrics::with_recorder(|r| r.register_gauge(key, &METADATA));
        handles.gauges.get(name, &labels, register).set(value)
    })
}

/// Adds `delta` (which may be negative) to a gauge.
#[inline]
pub fn gauge_add<const N: usize>(
    name: &'static str,
    labels: [(&'static str, &'static str); N],
    delta: f64,
) {
    with_handles(|handles| {
        let register = |key: &Key| metrics::with_recorder(|r| r.register_gauge(key, &METADATA));
        handles.gauges.get(name, &labels, register).increment(delta)
    })
}

/// Records one histogram sample.
#[inline]
pub fn sample<const N: usize>(
    name: &'static str,
    labels: [(&'static str, &'static str); N],
    value: f64,
) {
    with_handles(|handles| {
        let register = |key: &Key| metrics::with_recorder(|r| r.register_histogram(key, &METADATA));
        handles
            .histograms
            .get(name, &labels, register)
            .record(value)
    })
}

/// `text` as a `&'static str` for a label value: each distinct text is leaked once, so
/// the memory is bounded by the distinct configured names (policy names, issuers).
/// Called when a layer is built, never per request.
pub fn intern(text: &str) -> &'static str {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    let names = names.get_or_insert_with(HashSet::new);
    match names.get(text) {
        Some(name) => name,
        None => {
            let name: &'static str = Box::leak(text.into());
            names.insert(name);
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    fn counters(snapshotter: &metrics_util::debugging::Snapshotter) -> Vec<(String, u64)> {
        let mut out: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Counter(n) => {
                    let key = key.key();
                    let labels: Vec<_> = key.labels().map(|l| l.value().to_owned()).collect();
                    Some((format!("{}{{{}}}", key.name(), labels.join(",")), n))
                }
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn counts_reach_the_recorder_installed_now() {
        let first = DebuggingRecorder::new();
        let first_snap = first.snapshotter();
        metrics::with_local_recorder(&first, || {
            count("portcullis_test_total", [("outcome", "allowed")], 2);
            count("portcullis_test_total", [("outcome", "allowed")], 1);
            count("portcullis_test_total", [("outcome", "rejected")], 1);
        });
        let second = DebuggingRecorder::new();
        let second_snap = second.snapshotter();
        metrics::with_local_recorder(&second, || {
            count("portcullis_test_total", [("outcome", "allowed")], 5);
        });
        assert_eq!(
            counters(&first_snap),
            [
                ("portcullis_test_total{allowed}".to_owned(), 3),
                ("portcullis_test_total{rejected}".to_owned(), 1)
            ]
        );
        assert_eq!(
            counters(&second_snap),
            [("portcullis_test_total{allowed}".to_owned(), 5)]
        );
    }

    #[test]
    fn series_sharing_a_slot_keep_their_own_counts() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let values: Vec<&'static str> = (0..3 * SLOTS).map(|i| intern(&i.to_string())).collect();
        metrics::with_local_recorder(&recorder, || {
            for round in 0..3 {
                for (i, value) in values.iter().enumerate() {
                    if i % 3 >= round {
                        count("portcullis_slots_total", [("value", value)], 1);
                    }
                }
            }
        });
        let counts = counters(&snapshotter);
        assert_eq!(counts.len(), values.len());
        for (i, value) in values.iter().enumerate() {
            let key = format!("portcullis_slots_total{{{value}}}");
            let n = counts.iter().find(|(k, _)| *k == key).map(|(_, n)| *n);
            assert_eq!(n, Some(i as u64 % 3 + 1), "{key}");
        }
    }

    #[test]
    fn interned_names_are_shared() {
        let a = intern(&String::from("api"));
        let b = intern(&String::from("api"));
        assert_eq!(a, "api");
        assert!(std::ptr::eq(a, b));
    }
}
