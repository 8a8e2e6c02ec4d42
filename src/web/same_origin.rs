//! Cross-site request forgery protection for everything the screens call. The console's
//! credential is ambient (a TLS client certificate, or the operator's tunnel to the admin
//! socket), so a page of another site must not be able to make the browser send a state
//! change: every request other than GET and HEAD that a browser marks as coming from another
//! origin — `Sec-Fetch-Site` other than `same-origin` or `none`, or an `Origin` that is not
//! this request's own — is refused with 403. Clients that are not browsers (curl, the
//! `estca` command) send neither header and are not affected.
//!
//! On the admin socket, reached by the operator through a local port (an SSH tunnel), every
//! request must name a host that only a legitimate client sends (see `is_admin_host`), so
//! that a web page cannot reach the socket through DNS rebinding (its own name pointed at
//! 127.0.0.1). This is decided by `Host` alone, not by `Origin` or `Sec-Fetch-*`: a browser
//! sends neither on a same-origin GET over plain http from a name that is not localhost, so
//! a rebinding page's `fetch('/api/v1/accounts')` looks like curl except for its `Host`.

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
    /// A request to the admin socket that names a host no legitimate client sends.
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
    // On the admin socket the host decides alone, for every request, whatever else it
    // carries: a rebinding page's same-origin GET has no `Origin` and no `Sec-Fetch-*`.
    if admin_socket && !admin_host_allowed(headers) {
        return Err(CrossSite::NotLoopback);
    }
    // The origin checks below still matter there: a page of another origin on the
    // operator's machine (`http://localhost:3000`) names the tunnel as `localhost:8444`,
    // which passes the host rule, and only its `Origin` or `Sec-Fetch-Site` gives it away.
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

/// Whether the `Host` of a request on the admin socket is one a legitimate client sends.
///
/// No `Host` at all (an HTTP/1.0 client, or a hand-written request to the socket) and an
/// empty one (what RFC 9110 has a client send when its target has no authority, as for a
/// socket) pass: a browser always sends the page's own name, which it sets itself and a page
/// cannot remove, so a rebinding attack always carries a `Host`. More than one `Host` is
/// refused (RFC 9112 makes that a bad request), so that a check of the first cannot be
/// passed while something else reads another.
fn admin_host_allowed(headers: &HeaderMap) -> bool {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => true,
        (Some(host), None) => host.is_empty() || host.to_str().is_ok_and(is_admin_host),
        (Some(_), Some(_)) => false,
    }
}

/// The names that reach the admin socket legitimately, and why each cannot be a web page's:
///
/// - `localhost`, `127.0.0.1`, `[::1]`, with any port (the tunnel's local port, which the
///   operator chooses): browsers resolve `localhost` to loopback themselves and never ask
///   DNS, and an address literal is not a name anyone can point anywhere.
/// - `estca-admin` (what the `estca` command sends, `cli::client`) and `estca` (the README's
///   `curl --unix-socket data/admin.sock http://estca/...`), without a port only: these go
///   over the socket directly, never through a port, and a page could use them only on
///   port 80 of a tunnel (a privileged port) and with the victim's DNS answering for a
///   single-label name.
fn is_admin_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("estca-admin") || host.eq_ignore_ascii_case("estca") {
        return true;
    }
    let name = match host.strip_prefix('[') {
        // `[::1]` or `[::1]:PORT`: whatever follows `]` must be a port.
        Some(rest) => match rest.split_once(']') {
            Some((name, "")) => name,
            Some((name, after)) if after.strip_prefix(':').is_some_and(is_port) => name,
            _ => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        },
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "::1"
}

/// A port number as it follows `:` in `Host` (digits only, at most five).
fn is_port(digits: &str) -> bool {
    !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The middleware: refuses cross-site state changes, and requests on the admin socket that
/// name another host (403, one sentence), before any handler.
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

    /// The walkthrough's attack: a page at `http://evil.test:8444/` (its name pointed at
    /// 127.0.0.1) reads `/api/v1/accounts` with a same-origin GET, for which the browser
    /// sends no `Origin` and no `Sec-Fetch-*`.
    #[test]
    fn rebinding_without_browser_headers_is_refused_on_the_admin_socket() {
        let rebound = headers(&[("host", "evil.test:8444")]);
        for method in [Method::GET, Method::HEAD, Method::POST] {
            assert_eq!(
                check(&method, &rebound, true),
                Err(CrossSite::NotLoopback),
                "{method}"
            );
        }
        // The HTTPS port is not reached through a tunnel; the rule is the admin socket's.
        assert_eq!(check(&Method::GET, &rebound, false), Ok(()));
    }

    #[test]
    fn the_admin_socket_accepts_only_the_names_its_clients_send() {
        for host in [
            "localhost:8444",
            "LOCALHOST:8444",
            "localhost",
            "127.0.0.1:8444",
            "127.0.0.1",
            "[::1]:8444",
            "[::1]",
            "estca-admin",
            "estca",
            "",
        ] {
            let h = headers(&[("host", host)]);
            assert_eq!(check(&Method::GET, &h, true), Ok(()), "{host:?}");
            assert_eq!(check(&Method::POST, &h, true), Ok(()), "{host:?}");
        }
        // No `Host` at all: not a browser, which always sends one.
        assert_eq!(check(&Method::GET, &headers(&[]), true), Ok(()));
        for host in [
            "evil.test:8444",
            "evil.test",
            "estca:8444",
            "estca-admin:8444",
            "localhost.",
            "localhost.evil.test:8444",
            "127.0.0.1.evil.test:8444",
            "sub.localhost:8444",
            "localhost:",
            "localhost:8444:1",
            "localhost:84x4",
            "localhost:123456",
            "[::1]x",
            "[::1]:",
            "[::2]:8444",
            "[::1",
            "::1",
        ] {
            let h = headers(&[("host", host)]);
            assert_eq!(
                check(&Method::GET, &h, true),
                Err(CrossSite::NotLoopback),
                "{host:?}"
            );
        }
    }

    #[test]
    fn a_second_host_is_refused_on_the_admin_socket() {
        let mut h = headers(&[("host", "localhost:8444")]);
        h.append(header::HOST, HeaderValue::from_static("evil.test:8444"));
        assert_eq!(check(&Method::GET, &h, true), Err(CrossSite::NotLoopback));
    }

    #[test]
    fn a_page_of_another_local_origin_cannot_change_state_through_the_tunnel() {
        let h = headers(&[
            ("host", "localhost:8444"),
            ("origin", "http://localhost:3000"),
        ]);
        assert_eq!(check(&Method::GET, &h, true), Ok(()));
        assert_eq!(
            check(&Method::POST, &h, true),
            Err(CrossSite::ForeignOrigin)
        );
        let own = headers(&[
            ("host", "localhost:8444"),
            ("origin", "http://localhost:8444"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(check(&Method::POST, &own, true), Ok(()));
    }
}
