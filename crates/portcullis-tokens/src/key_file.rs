//! A signing key kept in a file: made on first start, read afterwards.

use std::{
    fs::{self, OpenOptions},
    io::{ErrorKind as IoErrorKind, Read, Write},
    path::Path,
};

use zeroize::Zeroizing;

use crate::{Error, ErrorKind, SigningAlgorithm, SigningKey};

impl SigningKey {
    /// The key in the PKCS#8 PEM file at `path`, or a new `alg` key written there if
    /// the file does not exist. Returns the key and whether it was made now.
    ///
    /// The file is created with mode `0600` (on Unix) and `create_new`, so two
    /// processes starting at once never overwrite each other's key: the loser reads
    /// the winner's. A file readable by other users is still read, with a warning
    /// (`tracing`, target `portcullis::tokens`). Keep the file: tokens signed with a
    /// key verify only while it is served, so a key made anew on every start logs
    /// everyone out on every restart.
    ///
    /// ```
    /// use portcullis_tokens::{SigningAlgorithm, SigningKey};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("signing-key.pem");
    /// let (first, made) = SigningKey::load_or_generate(&path, SigningAlgorithm::EdDsa).unwrap();
    /// assert!(made);
    /// let (again, made) = SigningKey::load_or_generate(&path, SigningAlgorithm::EdDsa).unwrap();
    /// assert!(!made);
    /// assert_eq!(again.kid(), first.kid());
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Key`] when the file cannot be created, written or read (the I/O
    /// error is the source), or does not hold a PKCS#8 key this crate signs with. The
    /// key never appears in an error.
    pub fn load_or_generate(path: &Path, alg: SigningAlgorithm) -> Result<(Self, bool), Error> {
        let io = |what: &'static str| {
            move |e: std::io::Error| Error::new(ErrorKind::Key, what).with_source(e)
        };
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let (pem, made) = match options.open(path) {
            Ok(mut file) => {
                let pem = SigningKey::generate(alg)?.to_pkcs8_pem()?;
                file.write_all(pem.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io("cannot write the key file"))?;
                (Zeroizing::new(pem.as_bytes().to_vec()), true)
            }
            Err(e) if e.kind() == IoErrorKind::AlreadyExists => {
                let mut file = fs::File::open(path).map_err(io("cannot open the key file"))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = file
                        .metadata()
                        .map_err(io("cannot read the key file's metadata"))?
                        .permissions()
                        .mode();
                    if mode & 0o077 != 0 {
                        tracing::warn!(
                            target: "portcullis::tokens",
                            path = %path.display(),
                            mode = format_args!("{:o}", mode & 0o777),
                            "the signing key file is readable by other users; chmod 600 it"
                        );
                    }
                }
                let mut pem = Zeroizing::new(Vec::new());
                file.read_to_end(&mut pem)
                    .map_err(io("cannot read the key file"))?;
                (pem, false)
            }
            Err(e) => return Err(io("cannot create the key file")(e)),
        };
        Ok((SigningKey::from_pkcs8_pem(&pem)?, made))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_file_is_a_key_error_and_stays_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        fs::write(&path, b"not a key").unwrap();
        let err = SigningKey::load_or_generate(&path, SigningAlgorithm::EdDsa).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Key);
        assert_eq!(fs::read(&path).unwrap(), b"not a key");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_key_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let (key, made) = SigningKey::load_or_generate(&path, SigningAlgorithm::Es256).unwrap();
        assert!(made);
        assert_eq!(key.algorithm(), SigningAlgorithm::Es256);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
