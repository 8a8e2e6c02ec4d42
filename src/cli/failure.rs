//! Why a command failed, as an exit code scripts can branch on and, with `--json`, a JSON
//! object on standard error.

use std::process::ExitCode;

use serde::Serialize;

/// The kinds of failure a script tells apart; each has its own exit code (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Anything else: a file that cannot be read, a daemon error, … (exit code 1).
    Other,
    /// The configuration file or an `ESTCA_*` variable is wrong (exit code 3). Command-line
    /// usage errors exit with 2, as clap reports them.
    Configuration,
    /// The daemon could not be reached on the admin socket (exit code 4).
    Unreachable,
    /// The daemon has no such thing, e.g. an unknown ID or serial (exit code 5).
    NotFound,
    /// The daemon refused the request: a conflict, a bad value, a state that does not allow
    /// it (exit code 6).
    Refused,
}

impl FailureKind {
    /// The process exit code of this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            FailureKind::Other => 1,
            FailureKind::Configuration => 3,
            FailureKind::Unreachable => 4,
            FailureKind::NotFound => 5,
            FailureKind::Refused => 6,
        }
    }
}

/// A failed command: what kind, and a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What kind of failure, for the exit code and scripts.
    #[serde(rename = "error")]
    pub kind: FailureKind,
    /// What went wrong and what to do, for a person.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Reports the failure on standard error (a JSON object with `--json`) and gives the exit
    /// code.
    pub fn report(&self, json: bool) -> ExitCode {
        if json {
            match serde_json::to_string(self) {
                Ok(text) => eprintln!("{text}"),
                Err(_) => eprintln!("estca: {}", self.message),
            }
        } else {
            eprintln!("estca: {}", self.message);
        }
        ExitCode::from(self.kind.exit_code())
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::new(FailureKind::Other, message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Self::new(FailureKind::Other, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_codes_and_snake_case_names() {
        let kinds = [
            FailureKind::Other,
            FailureKind::Configuration,
            FailureKind::Unreachable,
            FailureKind::NotFound,
            FailureKind::Refused,
        ];
        let mut codes: Vec<u8> = kinds.iter().map(|k| k.exit_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, vec![1, 3, 4, 5, 6]);
        assert_eq!(
            serde_json::to_value(Failure::new(FailureKind::NotFound, "no ID x")).unwrap(),
            serde_json::json!({ "error": "not_found", "message": "no ID x" })
        );
    }
}
