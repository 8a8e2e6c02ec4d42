//! estca: a certificate authority daemon that issues client certificates to IDs that enroll
//! with a password over EST (RFC 7030), one active certificate per ID.
//!
//! The layers follow a public CA's separation of concerns:
//! front ends ([`est`], [`api`], [`cli`]) parse and answer protocols;
//! [`ra`] (registration authority) holds every policy decision;
//! [`ca`] builds and signs; [`store`] keeps state behind a trait of atomic operations.
//! [`revocation`] publishes revocation status (CRL, OCSP) to relying parties.
//! [`config`], [`tls`] and [`server`] wire them together.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod ca;
pub mod cli;
pub mod config;
pub mod est;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod private_dir;
pub mod private_file;
pub mod ra;
pub mod reload;
pub mod revocation;
pub mod server;
pub mod source;
pub mod store;
pub mod tls;
