//! estca: a certificate authority daemon that issues client certificates to IDs that enroll
//! with a password over EST (RFC 7030), one active certificate per ID.
//!
//! The layers follow a public CA's separation of concerns: the front ends (EST, the
//! management API and its command line) parse and answer protocols; the registration
//! authority ([`ra`]) holds every policy decision; the certificate authority ([`ca`]) builds
//! and signs; the storage authority ([`store`]) keeps state behind an interface per consumer.
//! Revocation status (CRL, OCSP) is published to relying parties beside the front ends.
//! [`server`] wires them together from a [`config::Config`]; [`model`] holds the domain types
//! every layer shares.
//!
//! What this library offers is what a program that runs or embeds estca needs: the layers
//! above, [`server::start`] and [`server::run`], and the `estca` command ([`main`]). The front
//! ends, the wiring's helpers (logging, metrics, TLS, systemd notification, private files)
//! and the shared HTTP pieces are private modules; what only the benchmarks, the fuzzers and
//! `estca-bench` reach for is in a hidden `internal` module, with no promise that it stays.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
pub mod config;
pub mod model;
pub mod ra;
pub mod server;
pub mod store;

mod api;
mod cli;
mod est;
mod http;
mod logging;
mod metrics;
mod notify;
mod private_dir;
mod private_file;
mod reload;
mod revocation;
mod secret_file;
mod serverkeygen;
mod source;
mod tls;
mod web;

pub use cli::main;
pub use config::{Config, ConfigError};
pub use private_dir::PrivateDirError;
pub use revocation::RevocationError;
pub use server::{RunningDaemon, ServeError};
pub use source::SourceKey;
pub use tls::TlsError;

/// What only the benchmarks, the fuzzers and `estca-bench` need, under the paths of the
/// private modules it comes from. Not a stable surface: it changes with them.
#[doc(hidden)]
pub mod internal {
    /// The management API's routes.
    pub mod api {
        pub use crate::api::router;
    }

    /// The EST routes.
    pub mod est {
        pub use crate::est::router;
    }

    /// What the HTTP front ends share.
    pub mod http {
        pub use crate::http::{Base64Lines, PeerInfo};
    }

    /// Private data and CA directories.
    pub mod private_dir {
        pub use crate::private_dir::{prepare, Holds};
    }

    /// The CRL publisher and the OCSP responder of one issuing CA generation, and what tells
    /// the generations' certificates apart.
    pub mod revocation {
        pub use crate::revocation::{CrlPublisher, IssuerIndex, OcspResponder};
    }
}
