//! Where a configuration key was set: a line of the file, an environment variable, or the
//! embedded defaults, so that every configuration error points the operator at what to edit.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// The prefix of every environment variable that names configuration.
const PREFIX: &str = "ESTCA_";
/// Between the section and the key (and between nesting levels) of a configuration variable.
const SEPARATOR: &str = "__";

/// Where one key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// The line (1-based) where the key, or the table holding it, is written.
        line: usize,
    },
    /// An `ESTCA_<SECTION>__<KEY>` environment variable.
    Environment {
        /// The variable's name.
        variable: String,
    },
    /// Neither: the value is the embedded default.
    Defaults,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{} line {line}", path.display()),
            Origin::Environment { variable } => write!(f, "environment variable {variable}"),
            Origin::Defaults => f.write_str("the built-in default"),
        }
    }
}

/// The environment variables that name configuration, split from the other `ESTCA_*` ones.
#[derive(Debug, Default)]
pub struct ConfigurationVariables {
    /// `ESTCA_<SECTION>__<KEY>` variables with their values, in the order given.
    pub configuration: Vec<(String, String)>,
    /// Other variables starting with `ESTCA_` (e.g. `ESTCA_SERVICE_HOST`, which Kubernetes
    /// sets for a Service named `estca`): not configuration, ignored.
    pub ignored: Vec<String>,
}

impl ConfigurationVariables {
    /// Sorts an environment: only names of the form `ESTCA_<SECTION>__<KEY>` (a double
    /// underscore after the section) are configuration.
    pub fn split(env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut split = Self::default();
        for (name, value) in env {
            match name.strip_prefix(PREFIX) {
                Some(rest) if rest.contains(SEPARATOR) => split.configuration.push((name, value)),
                Some(_) => split.ignored.push(name),
                None => {}
            }
        }
        split
    }
}

/// The dotted key (`server.listen`) an `ESTCA_SERVER__LISTEN` variable sets.
fn dotted_key(variable: &str) -> Option<String> {
    let rest = variable.strip_prefix(PREFIX)?;
    Some(rest.to_lowercase().replace(SEPARATOR, "."))
}

/// Whether `candidate` is `key` or lies inside it (`server.listen` inside `server`).
fn within(candidate: &str, key: &str) -> bool {
    candidate == key
        || candidate
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The file and the configuration variables a configuration was loaded from.
#[derive(Debug)]
pub struct Sources<'a> {
    /// The file, with its text when it could be read.
    pub file: Option<(&'a Path, String)>,
    /// The `ESTCA_<SECTION>__<KEY>` variables.
    pub variables: &'a [(String, String)],
}

impl Sources<'_> {
    /// Where `key` (dotted, e.g. `server.listen`) was set; the environment wins over the file
    /// as it does when loading.
    pub fn origin_of(&self, key: &str) -> Origin {
        if let Some((variable, _)) = self.variables.iter().find(|(name, _)| {
            dotted_key(name).is_some_and(|dotted| within(&dotted, key) || within(key, &dotted))
        }) {
            return Origin::Environment {
                variable: variable.clone(),
            };
        }
        if let Some((path, text)) = &self.file {
            if let Some(line) = line_of(text, key) {
                return Origin::File {
                    path: path.to_path_buf(),
                    line,
                };
            }
        }
        Origin::Defaults
    }
}

/// The line of `text` (TOML) where `key` is written.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let document = DeTable::parse(text).ok()?;
    let mut table = document.get_ref();
    let mut found = None;
    for segment in key.split('.') {
        let (name, value) = table.iter().find(|(name, _)| name.get_ref() == segment)?;
        found = Some(name.span().start);
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    let before = text.get(..found?)?;
    Some(before.matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(names: &[&str]) -> Vec<(String, String)> {
        names.iter().map(|n| (n.to_string(), "x".into())).collect()
    }

    #[test]
    fn only_double_underscore_names_are_configuration() {
        let split = ConfigurationVariables::split(vars(&[
            "ESTCA_SERVER__LISTEN",
            "ESTCA_SERVICE_HOST",
            "ESTCA_PORT",
            "ESTCA_HOME",
            "PATH",
        ]));
        assert_eq!(split.configuration, vars(&["ESTCA_SERVER__LISTEN"]));
        assert_eq!(
            split.ignored,
            vec!["ESTCA_SERVICE_HOST", "ESTCA_PORT", "ESTCA_HOME"]
        );
    }

    #[test]
    fn origins_name_the_variable_or_the_line() {
        let path = Path::new("/etc/estca/estca.toml");
        let text = "# comment\n[server]\nlisten = \"x\"\n\n[auth]\nmax_failed_attempts = 0\n";
        let variables = vars(&["ESTCA_SERVER__LISTEN", "ESTCA_STORE__POSTGRES__URL"]);
        let sources = Sources {
            file: Some((path, text.to_owned())),
            variables: &variables,
        };
        assert_eq!(
            sources.origin_of("server.listen"),
            Origin::Environment {
                variable: "ESTCA_SERVER__LISTEN".into()
            }
        );
        assert_eq!(
            sources.origin_of("store"),
            Origin::Environment {
                variable: "ESTCA_STORE__POSTGRES__URL".into()
            }
        );
        assert_eq!(
            sources.origin_of("auth.max_failed_attempts").to_string(),
            "/etc/estca/estca.toml line 6"
        );
        assert_eq!(
            sources.origin_of("auth").to_string(),
            "/etc/estca/estca.toml line 5"
        );
        // A key the file does not hold keeps its default, even in a table the file has.
        assert_eq!(sources.origin_of("auth.lockout_minutes"), Origin::Defaults);
        assert_eq!(sources.origin_of("ca.dir"), Origin::Defaults);
    }
}
