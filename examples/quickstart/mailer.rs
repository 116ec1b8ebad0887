//! Outgoing mail: a [`Mailer`] trait, and the development default that writes each
//! mail to the log (and, with `MAIL_LOG`, appends it to a file as one JSON line).
//!
//! Replace [`LogMailer`] with an SMTP or provider client in production: the log
//! mailer puts reset and verification links (which are credentials for the next 30
//! minutes) into the log on purpose, so that a developer can click them.

use std::{
    fmt,
    fs::{File, OpenOptions},
    future::Future,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::json;

/// What a mail is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MailKind {
    /// "Confirm your address" with a verification token.
    VerifyEmail,
    /// "Reset your password" with a reset token.
    PasswordReset,
    /// "Someone tried to register with your address" (no token).
    AlreadyRegistered,
}

impl MailKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::AlreadyRegistered => "already_registered",
        }
    }
}

/// One mail. `Debug` hides the token.
pub(crate) struct Mail {
    pub(crate) to: String,
    pub(crate) kind: MailKind,
    pub(crate) subject: String,
    pub(crate) body: String,
    /// The one-time token the body links to, if any.
    pub(crate) token: Option<String>,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("kind", &self.kind)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A mail could not be sent.
#[derive(Debug)]
pub(crate) struct MailError(pub(crate) String);

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MailError {}

/// A boxed sending future.
pub(crate) type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

/// Sends mail. Implement it for SMTP or a provider's API.
pub(crate) trait Mailer: Send + Sync + 'static {
    /// Sends one mail.
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a>;
}

/// The development mailer: every mail goes to the log (target `quickstart::mail`),
/// and to `MAIL_LOG` as a JSON line when set.
#[derive(Clone, Default)]
pub(crate) struct LogMailer {
    file: Option<Arc<Mutex<File>>>,
}

impl fmt::Debug for LogMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogMailer")
            .field("file", &self.file.is_some())
            .finish()
    }
}

impl LogMailer {
    /// Logs only.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Also appends to `path` (created with mode `0600`).
    pub(crate) fn with_file(path: &Path) -> Result<Self, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot open mail log {}: {e}", path.display()))?;
        Ok(Self {
            file: Some(Arc::new(Mutex::new(file))),
        })
    }
}

impl Mailer for LogMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            // Fields before the body, so that the body's last line (a command) can be
            // copied whole from the log.
            tracing::info!(
                target: "quickstart::mail",
                "mail to {} [{}] {:?} (development mailer; configure a real one in production)\n{}\n",
                mail.to,
                mail.kind.as_str(),
                mail.subject,
                mail.body
            );
            if let Some(file) = &self.file {
                let at = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let line = json!({
                    "at": at,
                    "to": mail.to,
                    "kind": mail.kind.as_str(),
                    "subject": mail.subject,
                    "token": mail.token,
                })
                .to_string();
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                writeln!(file, "{line}")
                    .and_then(|()| file.flush())
                    .map_err(|e| MailError(format!("cannot append to the mail log: {e}")))?;
            }
            Ok(())
        })
    }
}
