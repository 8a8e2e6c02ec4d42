//! What the HTTP front ends share (EST, the management API, revocation status): who is on the
//! other end of a connection, how a registration-authority error becomes an HTTP status, and
//! the small answers every front end gives. It sits below the front ends and the server that
//! wires them, so that none of them imports another.

mod errors;
mod peer;
mod responses;

pub use errors::{http_error, ErrorBody};
pub use peer::PeerInfo;
pub use responses::{plain, with_authenticated_id, AuthenticatedId, PEM_CHAIN};
