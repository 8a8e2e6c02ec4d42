//! What the HTTP front ends share (EST, the management API, revocation status): who is on the
//! other end of a connection, how a registration-authority error becomes an HTTP status, and
//! the small answers every front end gives. It sits below the front ends and the server that
//! wires them, so that none of them imports another.

mod base64_lines;
mod errors;
mod header_case;
pub mod multipart;
mod not_allowed;
mod peer;
mod responses;

pub use base64_lines::Base64Lines;
pub use errors::{http_error, ErrorBody};
pub use header_case::HeaderSpelling;
pub use not_allowed::explain_method_not_allowed;
pub use peer::PeerInfo;
pub use responses::{plain, with_authenticated_id, with_reason_phrase, AuthenticatedId, PEM_CHAIN};
