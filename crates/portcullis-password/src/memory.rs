//! argon2 over reused memory.
//!
//! argon2id needs `m` KiB of working memory per hash (19 MiB by default). Allocated
//! afresh for every hash on whichever blocking-pool thread runs it, those buffers stay
//! resident: the C allocator keeps large freed blocks in per-thread arenas, so memory
//! grows with the number of threads that ever hashed, not with how many hash at once.
//! Here each hash borrows a buffer from a pool that keeps at most one per permitted
//! concurrent hash, so resident memory stays near `max_concurrency × m`.

use std::sync::Mutex;

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::phc::{Output, ParamsString, Salt},
};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::{HashError, HashErrorKind};

/// Buffers of `blocks` argon2 blocks, at most `keep` of them kept between hashes.
pub(crate) struct BlockPool {
    blocks: usize,
    keep: usize,
    free: Mutex<Vec<Vec<Block>>>,
}

impl BlockPool {
    pub(crate) fn new(blocks: usize, keep: usize) -> Self {
        Self {
            blocks,
            keep,
            free: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on `count` zeroed blocks: a pooled buffer when `count` is the pool's
    /// size, else one made for this call (a hash with other parameters, being verified
    /// before a rehash). The blocks are zeroed again afterwards: they held
    /// password-derived state.
    fn with<T>(&self, count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let pooled = count == self.blocks;
        let mut buffer = pooled
            .then(|| self.lock().pop())
            .flatten()
            .unwrap_or_else(|| vec![Block::new(); count]);
        let result = f(&mut buffer);
        buffer.iter_mut().for_each(Zeroize::zeroize);
        if pooled {
            let mut free = self.lock();
            if free.len() < self.keep {
                free.push(buffer);
            }
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn internal(_: impl Sized) -> HashError {
    HashError::new(HashErrorKind::Internal, "argon2 hashing failed")
}

/// The PHC string of `password` hashed with `argon2` (argon2id, version 0x13) and
/// `salt`.
pub(crate) fn hash_phc(
    pool: &BlockPool,
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
) -> Result<String, HashError> {
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let mut buffer = Zeroizing::new([0u8; Output::MAX_LENGTH]);
    let out = buffer.get_mut(..len).ok_or_else(|| internal(()))?;
    pool.with(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, salt, &mut *out, blocks)
    })
    .map_err(internal)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(internal)?,
        salt: Some(Salt::new(salt).map_err(internal)?),
        hash: Some(Output::new(out).map_err(internal)?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against the parsed PHC hash, with the algorithm, version and
/// parameters it names and `secret` (the pepper). Returns whether it matches.
pub(crate) fn verify_phc(
    pool: &BlockPool,
    secret: Option<&[u8]>,
    parsed: &PasswordHash,
    params: Params,
    password: &[u8],
) -> Result<bool, HashError> {
    let malformed = || HashError::new(HashErrorKind::MalformedHash, "malformed password hash");
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|_| malformed())?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|_| malformed())?,
        None => Version::default(),
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(malformed());
    };
    let blocks = params.block_count();
    let argon2 = match secret {
        Some(secret) => Argon2::new_with_secret(secret, algorithm, version, params)
            .map_err(|_| HashError::new(HashErrorKind::Config, "invalid pepper"))?,
        None => Argon2::new(algorithm, version, params),
    };
    let mut buffer = Zeroizing::new([0u8; Output::MAX_LENGTH]);
    let out = buffer
        .get_mut(..expected.as_bytes().len())
        .ok_or_else(malformed)?;
    pool.with(blocks, |memory| {
        argon2.hash_password_into_with_memory(password, salt, &mut *out, memory)
    })
    .map_err(|_| malformed())?;
    Ok(out.ct_eq(expected.as_bytes()).into())
}
