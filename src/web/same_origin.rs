//! Cross-site request forgery protection for everything the screens call. The console's
//! credential is ambient (a TLS client certificate, or the operator's tunnel to the admin
//! socket), so a page of another site must not be able to make the browser send a state
//! change: every request other than GET and HEAD that a browser marks as coming from another
//! origin — `Sec-Fetch-Site` other than `same-origin` or `none`, or an `Origin` that is not
//! this request's own — is refused with 403. Clients that are not browsers (curl, the
//! `estca` command) send neither header and are not affected.
//!
//! On the admin socket, reached by the operator through a local port (an SSH tunnel), a
//! browser request must also name a loopback host, so that a web page cannot reach the
//! socket through DNS rebinding (its own name pointed at 127.0.0.1).

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::{plain, PeerInfo};

/// Why a browser request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossSite {
    /// A state change sent by a page of another origin.
    ForeignOrigin,
    /// A browser request to the admin socket that does not name a loopback host.
    NotLoopback,
}

impl CrossSite {
    fn sentence(self) -> &'static str {
        match self {
            Self::ForeignOrigin => {
                "refused: this change was sent by a page of another site; use estca's own \
                 console page"
            }
            Self::NotLoopback => {
                "refused: open the console on the admin socket through localhost \
                 (an SSH tunnel to 127.0.0.1), not through another host name"
            }
        }
    }
}

/// Whether a request with `method` and `headers`, on the admin socket or not, may go on.
pub fn check(method: &Method, headers: &HeaderMap, admin_socket: bool) -> Result<(), CrossSite> {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let from_browser = fetch_site.is_some() || origin.is_some();
    if admin_socket && from_browser && !host.is_some_and(is_loopback_host) {
        return Err(CrossSite::NotLoopback);
    }
    if method == Method::GET || method == Method::HEAD {
        return Ok(());
    }
    if let Some(site) = fetch_site {
        if site != "same-origin" && site != "none" {
            return Err(CrossSite::ForeignOrigin);
        }
    }
    if let Some(origin) = origin {
        let own = host.is_some_and(|host| {
            origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        });
        if !own {
            return Err(CrossSite::ForeignOrigin);
        }
    }
    Ok(())
}

/// `localhost`, `127.0.0.1`, `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "::1"
}

/// The middleware: refuses cross-site state changes (403, one sentence) before any handler.
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    let admin_socket = req
        .extensions()
        .get::<PeerInfo>()
        .is_some_and(|p| p.admin_socket_uid().is_some());
    match check(req.method(), req.headers(), admin_socket) {
        Ok(()) => next.run(req).await,
        Err(why) => plain(StatusCode::FORBIDDEN, why.sentence()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn non_browser_clients_pass() {
        let h = headers(&[("host", "ca.example:8443")]);
        assert_eq!(check(&Method::POST, &h, false), Ok(()));
        assert_eq!(check(&Method::POST, &headers(&[]), true), Ok(()));
    }

    #[test]
    fn same_origin_state_changes_pass() {
        let h = headers(&[
            ("host", "ca.example:8443"),
            ("origin", "https://ca.example:8443"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(check(&Method::POST, &h, false), Ok(()));
        assert_eq!(check(&Method::PATCH, &h, false), Ok(()));
    }

    #[test]
    fn cross_site_state_changes_are_refused() {
        let other = headers(&[
            ("host", "ca.example:8443"),
            ("origin", "https://evil.example"),
        ]);
        assert_eq!(
            check(&Method::POST, &other, false),
            Err(CrossSite::ForeignOrigin)
        );
        let marked = headers(&[
            ("host", "ca.example:8443"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert_eq!(
            check(&Method::POST, &marked, false),
            Err(CrossSite::ForeignOrigin)
        );
        let sibling = headers(&[("host", "ca.example:8443"), ("sec-fetch-site", "same-site")]);
        assert_eq!(
            check(&Method::PATCH, &sibling, false),
            Err(CrossSite::ForeignOrigin)
        );
        let null_origin = headers(&[("host", "ca.example:8443"), ("origin", "null")]);
        assert_eq!(
            check(&Method::POST, &null_origin, false),
            Err(CrossSite::ForeignOrigin)
        );
        // Reads are not state changes.
        assert_eq!(check(&Method::GET, &other, false), Ok(()));
    }

    #[test]
    fn browsers_reach_the_admin_socket_only_as_localhost() {
        for host in [
            "localhost:8444",
            "127.0.0.1:8444",
            "[::1]:8444",
            "localhost",
        ] {
            let h = headers(&[("host", host), ("sec-fetch-site", "same-origin")]);
            assert_eq!(check(&Method::GET, &h, true), Ok(()), "{host}");
        }
        let rebound = headers(&[
            ("host", "evil.example:8444"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(
            check(&Method::GET, &rebound, true),
            Err(CrossSite::NotLoopback)
        );
        assert_eq!(check(&Method::GET, &rebound, false), Ok(()));
    }
}
