//! Logging with `tracing`: human-readable text or JSON lines on standard error; under
//! systemd (`JOURNAL_STREAM` set) without timestamps of our own (the journal adds them) and
//! with each line prefixed by its syslog priority (`<3>` error, `<4>` warning, `<6>` info,
//! `<7>` debug and trace), as sd-daemon(3) describes. The level filter can be replaced while
//! the daemon runs (SIGHUP).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::config::LogFormat;

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The filter is not a tracing filter.
    #[error("log.level: '{level}' is not a tracing filter such as \"info\": {reason}")]
    Filter {
        /// The filter given.
        level: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The level could not be swapped.
    #[error("cannot change the log level: {0}")]
    Reload(String),
}

/// Changes the log filter of the running process.
#[derive(Clone)]
pub struct LogHandle {
    filter: Option<reload::Handle<EnvFilter, Registry>>,
}

impl fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogHandle")
    }
}

impl LogHandle {
    /// A handle that changes nothing (when another subscriber was installed first).
    pub fn detached() -> Self {
        Self { filter: None }
    }

    /// Replaces the level filter, e.g. with `"debug"`.
    pub fn set_level(&self, level: &str) -> Result<(), LoggingError> {
        let filter = parse_filter(level)?;
        match &self.filter {
            Some(handle) => handle
                .reload(filter)
                .map_err(|e| LoggingError::Reload(e.to_string())),
            None => Ok(()),
        }
    }
}

/// Libraries whose routine messages are not events for the operator, each quietened to a
/// level unless the operator's filter names the library itself:
///
/// - rustls warns, for every handshake of a client that sends an IP address as its server
///   name (libest's `estclient -s 127.0.0.1`, many devices), "Illegal SNI extension:
///   ignoring IP address presented as hostname". The handshake goes on; nothing is wrong.
/// - fjall and its `lsm_tree` announce at INFO every partition they open and recover, about
///   thirty lines at each start of a daemon on `store.backend = "fjall"`; their warnings and
///   errors still show.
const QUIETENED: [(&str, &str); 3] = [
    ("rustls", "rustls::msgs::handshake=error"),
    ("fjall", "fjall=warn"),
    ("lsm_tree", "lsm_tree=warn"),
];

/// The operator's filter (`log.level`, `RUST_LOG` syntax) with the [`QUIETENED`] libraries
/// it does not name added.
fn with_quietened(level: &str) -> String {
    if level.trim().is_empty() {
        return level.to_owned();
    }
    QUIETENED
        .iter()
        .filter(|(library, _)| !level.contains(library))
        .fold(level.to_owned(), |filter, (_, directive)| {
            format!("{filter},{directive}")
        })
}

fn parse_filter(level: &str) -> Result<EnvFilter, LoggingError> {
    EnvFilter::try_new(with_quietened(level)).map_err(|e| LoggingError::Filter {
        level: level.to_owned(),
        reason: e.to_string(),
    })
}

/// Whether standard error goes to the journal: `JOURNAL_STREAM` is set (systemd sets it for
/// services whose output goes to the journal).
pub fn journal_stream() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

/// Installs the process's subscriber. When one is already installed (tests), the returned
/// handle changes nothing.
pub fn init(format: LogFormat, level: &str) -> Result<LogHandle, LoggingError> {
    let (filter, handle) = reload::Layer::new(parse_filter(level)?);
    let journal = journal_stream();
    let ansi = !journal && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let output: Box<dyn Layer<_> + Send + Sync> = match (format, journal) {
        (LogFormat::Text, false) => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        (LogFormat::Text, true) => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(SyslogPriority(
                tracing_subscriber::fmt::format().without_time(),
            ))
            .boxed(),
        (LogFormat::Json, false) => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .boxed(),
        (LogFormat::Json, true) => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(SyslogPriority(
                tracing_subscriber::fmt::format().json().without_time(),
            ))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .boxed(),
    };
    match tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
    {
        Ok(()) => Ok(LogHandle {
            filter: Some(handle),
        }),
        Err(_) => Ok(LogHandle::detached()),
    }
}

/// The syslog priority of a level, as sd-daemon(3) maps them.
pub fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Prefixes each line of an inner format with `<N>`, the syslog priority of its level.
struct SyslogPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(syslog_priority(&Level::ERROR), 3);
        assert_eq!(syslog_priority(&Level::WARN), 4);
        assert_eq!(syslog_priority(&Level::INFO), 6);
        assert_eq!(syslog_priority(&Level::DEBUG), 7);
        assert_eq!(syslog_priority(&Level::TRACE), 7);
    }

    #[test]
    fn routine_library_messages_are_quietened_unless_the_filter_names_the_library() {
        assert_eq!(
            with_quietened("info"),
            "info,rustls::msgs::handshake=error,fjall=warn,lsm_tree=warn"
        );
        assert_eq!(
            with_quietened("info,fjall=debug"),
            "info,fjall=debug,rustls::msgs::handshake=error,lsm_tree=warn"
        );
        assert_eq!(with_quietened(""), "");
    }

    #[test]
    fn bad_filters_are_refused_with_their_text() {
        let err = LogHandle::detached().set_level("info,[").unwrap_err();
        assert!(err.to_string().contains("info,["), "{err}");
    }
}
