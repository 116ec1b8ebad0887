//! Secrets kept in the data directory: the token signing key (PKCS#8 PEM) and the
//! key that derives CSRF tokens. Made on first start, read afterwards, files `0600`
//! in a `0700` directory, so tokens survive restarts.

use std::{
    fs::{self, OpenOptions},
    io::{ErrorKind, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use portcullis_tokens::{SigningAlgorithm, SigningKey};
use rand::RngCore;

/// Whether a key was read or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Loaded,
    Generated,
}

impl Origin {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Generated => "generated",
        }
    }
}

/// Creates the data directory (mode `0700`) if needed.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), String> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(format!(
            "cannot create data directory {}: {e}",
            dir.display()
        )),
    }
}

/// Reads `path`, or writes `make()` there with mode `0600` if it does not exist.
/// Creation uses `create_new`, so two processes starting at once never overwrite
/// each other's key: the loser reads the winner's.
fn load_or_create(
    path: &Path,
    make: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<(Vec<u8>, Origin), String> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let bytes = make()?;
            file.write_all(&bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((bytes, Origin::Generated))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let mut file =
                fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let mode = file
                .metadata()
                .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{:o}", mode & 0o777),
                    "key file is readable by other users; chmod 600 it"
                );
            }
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Ok((bytes, Origin::Loaded))
        }
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// The EdDSA signing key at `dir/signing-key.pem`.
pub(crate) fn signing_key(dir: &Path) -> Result<(SigningKey, Origin, PathBuf), String> {
    let path = dir.join("signing-key.pem");
    let (pem, origin) = load_or_create(&path, || {
        let key = SigningKey::generate(SigningAlgorithm::EdDsa)
            .map_err(|e| format!("cannot generate a signing key: {e}"))?;
        let pem = key
            .to_pkcs8_pem()
            .map_err(|e| format!("cannot encode the signing key: {e}"))?;
        Ok(pem.as_bytes().to_vec())
    })?;
    let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
        format!(
            "{} is not a PKCS#8 Ed25519/P-256 private key ({e}); move it away to make a new one",
            path.display()
        )
    })?;
    Ok((key, origin, path))
}

/// The 32-byte CSRF key at `dir/csrf.key`.
pub(crate) fn csrf_key(dir: &Path) -> Result<([u8; 32], Origin), String> {
    let path = dir.join("csrf.key");
    let (bytes, origin) = load_or_create(&path, || {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Ok(key)
    })?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| {
        format!(
            "{} must hold exactly 32 bytes; move it away to make a new one",
            path.display()
        )
    })?;
    Ok((key, origin))
}
