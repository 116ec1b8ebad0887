//! A password policy after NIST SP 800-63B §3.1.1.2.

use std::{collections::HashSet, error::Error as StdError, fmt, sync::OnceLock};

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::Password;

/// Inputs longer than this many bytes are refused before any other work (before
/// normalisation, before hashing): 1 KiB.
pub const MAX_INPUT_BYTES: usize = 1024;

/// NIST's floor for a minimum length: 8 characters.
pub const NIST_MIN_CHARS: usize = 8;

/// The minimum NIST recommends for passwords used as the only factor: 15 characters.
pub const RECOMMENDED_MIN_CHARS: usize = 15;

/// The longest maximum NIST lets a verifier impose: a maximum must allow at least 64.
pub const NIST_MIN_MAX_CHARS: usize = 64;

/// The bundled list of common passwords: the 11,611 entries of 8 or more characters
/// among the 30,000 most frequent passwords of the ranked list shipped by the `zxcvbn`
/// crate (MIT licence, notice in `data/LICENSE-zxcvbn`), which derives from public
/// password-leak frequency data. All lowercase ASCII, one per line.
pub const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect())
}

/// Which rule a password broke.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyRule {
    /// Over [`MAX_INPUT_BYTES`] bytes: refused before anything else.
    InputTooLarge,
    /// Fewer characters than the minimum.
    TooShort,
    /// More characters than the maximum.
    TooLong,
    /// On the list of common passwords.
    Common,
    /// Equal to a context word (user name, e-mail, service name), ignoring case.
    ContextSpecific,
}

impl PolicyRule {
    /// A stable machine-readable name (`too_short`, `common`, …), for a 422 body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InputTooLarge => "input_too_large",
            Self::TooShort => "too_short",
            Self::TooLong => "too_long",
            Self::Common => "common",
            Self::ContextSpecific => "context_specific",
        }
    }
}

/// A password was refused by the [`PasswordPolicy`]. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    rule: PolicyRule,
    limit: usize,
}

impl PolicyError {
    /// The rule broken.
    pub fn rule(&self) -> PolicyRule {
        self.rule
    }

    /// The limit involved (minimum or maximum characters, or bytes), or 0.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            PolicyRule::InputTooLarge => write!(f, "password input over {} bytes", self.limit),
            PolicyRule::TooShort => write!(f, "password shorter than {} characters", self.limit),
            PolicyRule::TooLong => write!(f, "password longer than {} characters", self.limit),
            PolicyRule::Common => f.write_str("password is too common"),
            PolicyRule::ContextSpecific => {
                f.write_str("password must not be the user name or service name")
            }
        }
    }
}

impl StdError for PolicyError {}

/// The policy could not be configured as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfigError(&'static str);

impl fmt::Display for PolicyConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl StdError for PolicyConfigError {}

/// Which new passwords to accept, after NIST SP 800-63B (rev. 4) §3.1.1.2.
///
/// - minimum length 8 characters by default; NIST recommends **15** when the password
///   is the only factor — raise it with [`min_chars`](Self::min_chars);
/// - maximum 128 characters by default (NIST: allow at least 64), and any input over
///   [`MAX_INPUT_BYTES`] is refused before normalisation or hashing;
/// - no truncation, no composition rules (no "one digit, one symbol");
/// - Unicode allowed; the password is **NFKC-normalised** before it is measured, checked
///   and hashed (NIST asks verifiers to normalise so that the same password typed on
///   different keyboards or input methods matches), and characters are counted as
///   Unicode code points;
/// - refused when on the bundled [`COMMON_PASSWORDS`] list (compared ignoring case) or
///   equal to a context word given to [`check_with_context`](Self::check_with_context).
///
/// ```
/// use portcullis_password::{PasswordPolicy, PolicyRule};
///
/// let policy = PasswordPolicy::new();
/// assert!(policy.check("correct horse battery staple").is_ok());
/// assert_eq!(policy.check("short").unwrap_err().rule(), PolicyRule::TooShort);
/// assert_eq!(policy.check("Password1").unwrap_err().rule(), PolicyRule::Common);
/// ```
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    min_chars: usize,
    max_chars: usize,
    blocklist: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordPolicy {
    /// The default policy: 8 to 128 characters, common passwords refused.
    pub fn new() -> Self {
        Self {
            min_chars: NIST_MIN_CHARS,
            max_chars: 128,
            blocklist: true,
        }
    }

    /// Sets the minimum length in characters (at least 8; 15 recommended).
    ///
    /// # Errors
    ///
    /// If `min` is under 8 or over the maximum.
    pub fn min_chars(mut self, min: usize) -> Result<Self, PolicyConfigError> {
        if min < NIST_MIN_CHARS {
            return Err(PolicyConfigError("minimum length must be at least 8"));
        }
        if min > self.max_chars {
            return Err(PolicyConfigError("minimum length exceeds the maximum"));
        }
        self.min_chars = min;
        Ok(self)
    }

    /// Sets the maximum length in characters (at least 64, and at most what fits in
    /// [`MAX_INPUT_BYTES`]: 1024).
    ///
    /// # Errors
    ///
    /// If `max` is under 64, over 1024, or under the minimum.
    pub fn max_chars(mut self, max: usize) -> Result<Self, PolicyConfigError> {
        if !(NIST_MIN_MAX_CHARS..=MAX_INPUT_BYTES).contains(&max) || max < self.min_chars {
            return Err(PolicyConfigError(
                "maximum length must be between 64 and 1024 and not under the minimum",
            ));
        }
        self.max_chars = max;
        Ok(self)
    }

    /// Turns the common-password list off (for tests, or when an external breached-
    /// password service is consulted instead).
    #[must_use]
    pub fn without_blocklist(mut self) -> Self {
        self.blocklist = false;
        self
    }

    /// Checks a new password.
    ///
    /// # Errors
    ///
    /// The first [`PolicyRule`] broken.
    pub fn check(&self, password: &str) -> Result<(), PolicyError> {
        self.check_with_context(password, &[])
    }

    /// Checks a new password, also refusing any of `context` (user name, e-mail, the
    /// service's name), compared ignoring case after normalisation.
    ///
    /// # Errors
    ///
    /// The first [`PolicyRule`] broken.
    pub fn check_with_context(&self, password: &str, context: &[&str]) -> Result<(), PolicyError> {
        let normalized = normalize(password).map_err(|_| PolicyError {
            rule: PolicyRule::InputTooLarge,
            limit: MAX_INPUT_BYTES,
        })?;
        let chars = normalized.chars().count();
        if chars < self.min_chars {
            return Err(PolicyError {
                rule: PolicyRule::TooShort,
                limit: self.min_chars,
            });
        }
        if chars > self.max_chars {
            return Err(PolicyError {
                rule: PolicyRule::TooLong,
                limit: self.max_chars,
            });
        }
        let lower = Zeroizing::new(normalized.to_lowercase());
        if self.blocklist && common_passwords().contains(lower.as_str()) {
            return Err(PolicyError {
                rule: PolicyRule::Common,
                limit: 0,
            });
        }
        if context
            .iter()
            .filter(|c| !c.is_empty())
            .any(|c| normalize(c).is_ok_and(|c| c.to_lowercase() == *lower))
        {
            return Err(PolicyError {
                rule: PolicyRule::ContextSpecific,
                limit: 0,
            });
        }
        Ok(())
    }

    /// Checks a [`Password`].
    ///
    /// # Errors
    ///
    /// The first [`PolicyRule`] broken.
    pub fn check_password(&self, password: &Password) -> Result<(), PolicyError> {
        self.check(password.expose())
    }
}

/// Refuses inputs over [`MAX_INPUT_BYTES`], then NFKC-normalises.
pub(crate) fn normalize(input: &str) -> Result<Zeroizing<String>, ()> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(());
    }
    Ok(Zeroizing::new(input.nfkc().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_loaded_and_lowercase() {
        let set = common_passwords();
        assert_eq!(set.len(), 11_611);
        assert!(set.contains("password"));
        assert!(set.contains("iloveyou"));
        assert!(set.iter().all(|p| p.len() >= 8 && *p == p.to_lowercase()));
    }
}
