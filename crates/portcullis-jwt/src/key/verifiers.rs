//! Each thread's jsonwebtoken verifiers, one per live key. A `JwtVerifier` is neither
//! `Send` nor `Sync`, so it cannot sit in the shared key; built per thread and kept,
//! it costs its construction (for HMAC, the key schedule) once per thread and key
//! instead of once per token.

use std::{
    cell::RefCell,
    sync::{Arc, Weak},
};

use jsonwebtoken::crypto::JwtVerifier;

use super::Material;

/// Past this many keys a thread drops the verifiers of keys that are gone, then,
/// if still full, all of them.
const PER_THREAD: usize = 32;

/// A key (weakly held) and the verifier built for it, if jsonwebtoken built one.
type Entry = (Weak<Material>, Option<Box<dyn JwtVerifier>>);

thread_local! {
    // The `Weak` keeps its key's allocation reserved while the entry exists, so an
    // address match always means the same key, never a new one at a reused address.
    static VERIFIERS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's verifier for `material` (`None` when jsonwebtoken
/// cannot build one for it, which verifies nothing).
pub(super) fn with<R>(
    material: &Arc<Material>,
    f: impl FnOnce(Option<&dyn JwtVerifier>) -> R,
) -> R {
    VERIFIERS.with(|cell| {
        let mut verifiers = cell.borrow_mut();
        let ptr = Arc::as_ptr(material);
        let index = match verifiers.iter().position(|(w, _)| w.as_ptr() == ptr) {
            Some(i) => i,
            None => {
                if verifiers.len() >= PER_THREAD {
                    verifiers.retain(|(w, _)| w.strong_count() > 0);
                    if verifiers.len() >= PER_THREAD {
                        verifiers.clear();
                    }
                }
                let built = match &**material {
                    Material::Jwt { decoding, alg } => {
                        (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.verifier_factory)(
                            alg, decoding,
                        )
                        .ok()
                    }
                    Material::AwsLc(_) => None,
                };
                verifiers.push((Arc::downgrade(material), built));
                verifiers.len() - 1
            }
        };
        f(verifiers[index].1.as_deref())
    })
}

#[cfg(test)]
pub(super) fn cached() -> usize {
    VERIFIERS.with(|cell| cell.borrow().len())
}
