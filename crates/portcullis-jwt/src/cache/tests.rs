use std::sync::atomic::AtomicU64;

use super::*;
use portcullis_core::PrincipalKind;

fn p(subject: &str) -> Principal {
    Principal::builder(subject, PrincipalKind::User).build()
}

/// Valid until `until`, verified by issuer 0 under `generation`.
fn valid(until: i64, generation: u64) -> Validity {
    Validity {
        until,
        issuer: 0,
        generation,
    }
}

/// Offers `token` once (issuer 0, whose generation is `generation`): admitted only
/// into a free way or on its second sight.
fn offer(cache: &TokenCache, token: &str, until: i64, now: i64, generation: u64) {
    cache.insert(
        cache.slot(token.as_bytes()),
        token.as_bytes(),
        p(token),
        valid(until, generation),
        now,
        |_| generation,
    );
}

/// Offers `token` twice, as a token seen twice is: it is then always admitted.
fn put(cache: &TokenCache, token: &str, until: i64, now: i64, generation: u64) {
    offer(cache, token, until, now, generation);
    offer(cache, token, until, now, generation);
}

fn get(cache: &TokenCache, token: &str, now: i64, generation: u64) -> Option<Principal> {
    cache.get(cache.slot(token.as_bytes()), token.as_bytes(), now, |_| {
        generation
    })
}

fn same_set(cache: &TokenCache, a: &str, b: &str) -> bool {
    std::ptr::eq(
        cache.at(cache.slot(a.as_bytes())).0,
        cache.at(cache.slot(b.as_bytes())).0,
    )
}

#[test]
fn tokens_sharing_a_tail_share_a_slot_but_never_an_answer() {
    let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
    let tail = "s".repeat(SLOT_BYTES);
    let (a, b) = (format!("aaaa.{tail}"), format!("bbbb.{tail}"));
    assert_eq!(cache.slot(a.as_bytes()), cache.slot(b.as_bytes()));
    put(&cache, &a, 100, 50, 0);
    assert!(get(&cache, &b, 60, 0).is_none());
    assert_eq!(get(&cache, &a, 60, 0).unwrap().subject(), a);
    // A different tail or length is a different slot (but for a 2^-64 chance).
    assert_ne!(cache.slot(a.as_bytes()), cache.slot(&a.as_bytes()[1..]));
    assert_ne!(cache.slot(a.as_bytes()), cache.slot(b"aaaa.t"));
}

#[test]
fn entry_dies_at_until() {
    let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
    put(&cache, "t", 100, 50, 0);
    assert!(get(&cache, "t", 99, 0).is_some());
    assert!(get(&cache, "t", 100, 0).is_none());
    assert_eq!(cache.len(|_| 0), 0, "a dead entry is removed on sight");
}

#[test]
fn other_generation_is_a_miss() {
    let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
    put(&cache, "t", 100, 50, 1);
    assert!(get(&cache, "t", 60, 2).is_none());
    assert_eq!(cache.len(|_| 0), 0);
}

#[test]
fn never_grows_past_capacity() {
    let cache = TokenCache::new(NonZeroUsize::new(64).unwrap());
    for i in 0..10_000 {
        put(&cache, &i.to_string(), 1_000, 0, 0);
        assert!(cache.len(|_| 0) <= 64);
    }
    // The newest entry is always kept.
    assert_eq!(get(&cache, "9999", 1, 0).unwrap().subject(), "9999");
}

#[test]
fn expired_entries_go_first_when_full() {
    let cache = TokenCache::new(NonZeroUsize::new(8).unwrap());
    for i in 0..7 {
        put(&cache, &i.to_string(), 10, 0, 0);
    }
    put(&cache, "live", 1_000, 0, 0);
    put(&cache, "new", 1_000, 20, 0);
    assert_eq!(cache.len(|_| 0), 2);
    assert!(get(&cache, "live", 21, 0).is_some());
}

#[test]
fn a_slot_collision_is_a_miss_not_a_hit() {
    // Force two different tokens into one slot: the stored token decides.
    let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
    let slot = cache.slot(b"a.b.c");
    cache.insert(slot, b"a.b.c", p("alice"), valid(1_000, 0), 0, |_| 0);
    assert!(cache.get(slot, b"a.b.d", 1, |_| 0).is_none());
    assert!(cache.get(slot, b"a.b.", 1, |_| 0).is_none());
    assert!(cache.get(slot, b"a.b.cc", 1, |_| 0).is_none());
    assert_eq!(
        cache.get(slot, b"a.b.c", 1, |_| 0).unwrap().subject(),
        "alice"
    );
    assert_eq!(
        cache.len(|_| 0),
        1,
        "a colliding look-up leaves the entry alone"
    );
}

#[test]
fn same_token_sees_every_differing_bit() {
    let a = *b"0123456789abcdefXYZ";
    assert!(same_token(&a, &a));
    for i in 0..a.len() {
        for bit in 0..8 {
            let mut b = a;
            b[i] ^= 1 << bit;
            assert!(!same_token(&a, &b), "byte {i} bit {bit}");
        }
    }
    assert!(!same_token(&a, &a[..18]));
    assert!(same_token(b"", b""));
}

#[test]
fn seeds_differ_between_caches() {
    let one = TokenCache::new(NonZeroUsize::new(4).unwrap());
    let two = TokenCache::new(NonZeroUsize::new(4).unwrap());
    let differ = (0..8).any(|i| {
        let t = format!("token-{i}");
        one.slot(t.as_bytes()) != two.slot(t.as_bytes())
    });
    assert!(differ, "each cache hashes with its own random seed");
}

#[test]
fn a_one_off_token_is_admitted_on_its_second_sight_only() {
    // One set of two ways.
    let cache = TokenCache::new(NonZeroUsize::new(2).unwrap());
    offer(&cache, "a", 1_000, 0, 0);
    offer(&cache, "b", 1_000, 0, 0);
    assert_eq!(cache.len(|_| 0), 2, "free ways take a token at first sight");
    offer(&cache, "c", 1_000, 1, 0);
    assert!(
        get(&cache, "c", 2, 0).is_none(),
        "not admitted at first sight"
    );
    assert!(get(&cache, "a", 2, 0).is_some());
    assert!(get(&cache, "b", 2, 0).is_some());
    offer(&cache, "c", 1_000, 3, 0);
    assert_eq!(get(&cache, "c", 4, 0).unwrap().subject(), "c");
    // It replaced the way used least recently ("a"), and only that one.
    assert!(get(&cache, "a", 4, 0).is_none());
    assert!(get(&cache, "b", 4, 0).is_some());
    assert_eq!(cache.len(|_| 0), 2);
}

#[test]
fn a_full_cache_replaces_one_entry_of_the_set_and_keeps_the_rest() {
    let cache = TokenCache::new(NonZeroUsize::new(64).unwrap());
    let tokens: Vec<String> = (0..2_000).map(|i| format!("token-{i}")).collect();
    for t in &tokens {
        put(&cache, t, 1_000, 0, 0);
    }
    let resident: Vec<&String> = tokens
        .iter()
        .filter(|t| get(&cache, t, 1, 0).is_some())
        .collect();
    assert_eq!(resident.len(), 64, "every way of every set is taken");
    put(&cache, "newcomer", 1_000, 2, 0);
    assert_eq!(get(&cache, "newcomer", 3, 0).unwrap().subject(), "newcomer");
    let gone: Vec<&&String> = resident
        .iter()
        .filter(|t| get(&cache, t, 3, 0).is_none())
        .collect();
    assert_eq!(gone.len(), 1, "exactly one entry made way");
    assert!(
        same_set(&cache, gone[0], "newcomer"),
        "from the newcomer's own set"
    );
    assert_eq!(cache.len(|_| 0), 64);
}

#[test]
fn expiry_and_generation_apply_to_entries_admitted_on_second_sight() {
    let cache = TokenCache::new(NonZeroUsize::new(2).unwrap());
    put(&cache, "a", 1_000, 0, 0);
    put(&cache, "b", 1_000, 0, 0);
    put(&cache, "c", 50, 1, 0);
    assert!(get(&cache, "c", 49, 0).is_some());
    assert!(
        get(&cache, "c", 50, 0).is_none(),
        "dead at `until`, even on a hit"
    );
    put(&cache, "d", 1_000, 60, 0);
    assert!(get(&cache, "d", 61, 0).is_some());
    assert!(
        get(&cache, "d", 61, 1).is_none(),
        "and of its generation only"
    );
}

#[test]
fn colliding_tokens_never_get_each_others_principal() {
    // Two tokens forced into one slot (the same hash), each offered twice.
    let cache = TokenCache::new(NonZeroUsize::new(8).unwrap());
    let slot = cache.slot(b"a.b.c");
    for _ in 0..2 {
        cache.insert(slot, b"a.b.c", p("alice"), valid(1_000, 0), 0, |_| 0);
    }
    assert_eq!(
        cache.get(slot, b"a.b.c", 1, |_| 0).unwrap().subject(),
        "alice"
    );
    assert!(cache.get(slot, b"x.y.z", 1, |_| 0).is_none());
    for _ in 0..2 {
        cache.insert(slot, b"x.y.z", p("bob"), valid(1_000, 0), 0, |_| 0);
    }
    for _ in 0..3 {
        if let Some(found) = cache.get(slot, b"a.b.c", 1, |_| 0) {
            assert_eq!(found.subject(), "alice");
        }
        assert_eq!(
            cache.get(slot, b"x.y.z", 1, |_| 0).unwrap().subject(),
            "bob"
        );
    }
    // The same hash in one set is one entry, never two.
    assert_eq!(cache.len(|_| 0), 1);
}

#[test]
fn a_capacity_of_one_holds_one_entry() {
    let cache = TokenCache::new(NonZeroUsize::new(1).unwrap());
    put(&cache, "a", 1_000, 0, 0);
    put(&cache, "b", 1_000, 0, 0);
    assert_eq!(cache.len(|_| 0), 1);
    assert!(get(&cache, "b", 1, 0).is_some());
}

#[test]
fn clear_empties_every_set() {
    let cache = TokenCache::new(NonZeroUsize::new(16).unwrap());
    for i in 0..16 {
        put(&cache, &i.to_string(), 1_000, 0, 0);
    }
    assert!(cache.len(|_| 0) > 0);
    cache.clear();
    assert_eq!(cache.len(|_| 0), 0);
    assert!((0..16).all(|i| get(&cache, &i.to_string(), 1, 0).is_none()));
}

#[test]
fn an_entry_answers_to_its_own_issuers_generation_only() {
    let cache = TokenCache::new(NonZeroUsize::new(4).unwrap());
    let generations = [AtomicU64::new(7), AtomicU64::new(3)];
    let current = |i: usize| generations[i].load(Ordering::Relaxed);
    for (token, issuer) in [("of-0", 0), ("of-1", 1)] {
        let validity = Validity {
            until: 1_000,
            issuer,
            generation: current(issuer),
        };
        for _ in 0..2 {
            let slot = cache.slot(token.as_bytes());
            cache.insert(slot, token.as_bytes(), p(token), validity, 0, current);
        }
    }
    let get = |token: &str| cache.get(cache.slot(token.as_bytes()), token.as_bytes(), 1, current);
    assert!(get("of-0").is_some() && get("of-1").is_some());
    // Issuer 1's keys rotate: its token is verified again, issuer 0's stays cached.
    generations[1].fetch_add(1, Ordering::Relaxed);
    assert!(get("of-1").is_none());
    assert_eq!(get("of-0").unwrap().subject(), "of-0");
    assert_eq!(cache.len(current), 1);
}

#[test]
fn memory_per_unit_of_capacity_is_as_documented() {
    let per_entry = (size_of::<Set>() + size_of::<Tags>()) / WAYS;
    assert!(per_entry <= 68, "{per_entry} bytes");
    assert_eq!(size_of::<Option<Entry>>(), 48);
    assert_eq!(size_of::<Tags>(), 16);
}
