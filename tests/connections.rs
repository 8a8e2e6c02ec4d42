//! Connection budgets (issue 10, items 2, 9 and 10): every listener has a budget of its own and
//! a per-source cap, so that one address flooding one listener with idle connections neither
//! locks other addresses out of it nor reaches the other listeners; a connection that sends
//! nothing is closed within `server.first_byte_timeout_secs`; and the admin socket's path is
//! replaced only when it holds a stale socket.
//!
//! Linux routes all of 127.0.0.0/8 to loopback, so each flood binds its client sockets to an
//! address of its own (127.0.3.7, …) before connecting: to the daemon, separate sources.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

/// Budgets small enough to flood quickly: 40 connections per TCP listener, 10 per source.
const BUDGET: usize = 40;
const PER_SOURCE: usize = 10;

/// The flooding source.
const FLOODER: Ipv4Addr = Ipv4Addr::new(127, 0, 3, 7);
/// A well-behaved source on the same listener.
const NEIGHBOUR: Ipv4Addr = Ipv4Addr::new(127, 0, 4, 1);

fn daemon(env: &[(&str, String)]) -> TestDaemon {
    TestDaemon::start(Options {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Options::default()
    })
}

/// An address from the ready line (`https`, `revocation_http`, `metrics`).
fn ready_addr(d: &TestDaemon, name: &str) -> SocketAddr {
    let log = d.stderr();
    let ready = log
        .lines()
        .find(|l| l.contains("estca ready"))
        .expect("a ready line");
    ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {ready}"))
        .parse()
        .unwrap()
}

/// `n` idle raw TCP connections from `source` to `to` (nothing is ever sent on them), as
/// non-blocking std sockets so that [`count_closed`] can look at them without waiting.
async fn idle_from(source: Ipv4Addr, to: SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
        let stream = socket.connect(to).await.unwrap();
        out.push(stream.into_std().unwrap());
    }
    out
}

/// Whether the daemon closed a non-blocking connection (end of stream or reset).
fn is_closed(mut stream: impl Read) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// How many of `conns` the daemon has closed.
fn count_closed(conns: &[std::net::TcpStream]) -> usize {
    conns.iter().filter(|s| is_closed(*s)).count()
}

/// Waits (at most 5 s) until the daemon has closed `expected` of `conns`; returns how many it
/// closed and how long it took to close `expected` (or the 5 s).
async fn settle(conns: &[std::net::TcpStream], expected: usize) -> (usize, Duration) {
    let started = Instant::now();
    loop {
        let closed = count_closed(conns);
        if closed >= expected || started.elapsed() > Duration::from_secs(5) {
            let took = started.elapsed();
            // A moment more, to see that no further ones are closed.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return (count_closed(conns), took);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTPS client whose connections come from `source`.
fn client_from(d: &TestDaemon, source: Ipv4Addr) -> EstClient {
    EstClient::from_source(d.port, &d.dir().root_ca_pem(), IpAddr::V4(source))
}

/// A plain-HTTP GET from `source`; the status, or the error when the connection was refused
/// or closed.
async fn plain_get(source: Ipv4Addr, url: &str) -> Result<u16, String> {
    // reqwest needs a TLS provider even for plain HTTP; ring is the one estca uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    match http.get(url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            r.bytes().await.map_err(|e| e.to_string())?;
            Ok(status)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The admin socket answers (a contracts listing over the Unix socket).
fn admin_answers(d: &TestDaemon) -> bool {
    admin_round_trip(&d.dir().path().join("data/admin.sock"))
        .is_ok_and(|status| status.contains(" 200 "))
}

fn budget_env() -> Vec<(&'static str, String)> {
    vec![
        ("ESTCA_SERVER__MAX_CONNECTIONS", BUDGET.to_string()),
        (
            "ESTCA_SERVER__MAX_CONNECTIONS_PER_SOURCE",
            PER_SOURCE.to_string(),
        ),
        ("ESTCA_REVOCATION__MAX_CONNECTIONS", BUDGET.to_string()),
        (
            "ESTCA_REVOCATION__MAX_CONNECTIONS_PER_SOURCE",
            PER_SOURCE.to_string(),
        ),
        // Long, so that the idle flood holds its connections for the whole test; the
        // first-byte deadline has its own test below.
        ("ESTCA_SERVER__FIRST_BYTE_TIMEOUT_SECS", "60".to_owned()),
        ("ESTCA_SERVER__HANDSHAKE_TIMEOUT_SECS", "60".to_owned()),
        ("ESTCA_SERVER__HEADER_TIMEOUT_SECS", "60".to_owned()),
    ]
}

/// Four more sources, each opening its share: with the flooder's, the first three fill the
/// listener's budget and the fourth finds it full.
fn fillers() -> impl Iterator<Item = Ipv4Addr> {
    (1..=4).map(|i| Ipv4Addr::new(127, 0, 5, i))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_https_flood_from_one_source_spares_other_sources_and_other_listeners() {
    let d = daemon(&budget_env());
    with_account(&d, "conn1", "5110");
    let https = ready_addr(&d, "https");
    let crl = format!("http://{}/crl", ready_addr(&d, "revocation_http"));
    let healthz = format!("http://{}/healthz", ready_addr(&d, "metrics"));

    // One source opens 1.5 times the listener's budget of idle connections: it keeps its
    // share, the rest are closed at once.
    let flood = idle_from(FLOODER, https, BUDGET * 3 / 2).await;
    let (closed, took) = settle(&flood, flood.len() - PER_SOURCE).await;
    eprintln!(
        "HTTPS: {} idle connections from {FLOODER}: {} held, {closed} closed within {took:?}",
        flood.len(),
        flood.len() - closed
    );
    assert_eq!(
        flood.len() - closed,
        PER_SOURCE,
        "the source keeps exactly its cap"
    );

    // Another source on the same listener is served: CA certificates and an enrollment.
    let neighbour = client_from(&d, NEIGHBOUR);
    let t = Instant::now();
    neighbour.get("cacerts").await.assert_status(200);
    neighbour
        .enroll("conn1", PASSWORD, &p256().csr_der)
        .await
        .assert_status(200);
    eprintln!(
        "HTTPS: {NEIGHBOUR} got cacerts and enrolled in {:?}",
        t.elapsed()
    );
    // The other listeners are served, even to the flooding source.
    assert_eq!(plain_get(FLOODER, &crl).await, Ok(200), "/crl");
    assert_eq!(plain_get(FLOODER, &healthz).await, Ok(200), "/healthz");
    assert!(admin_answers(&d), "the admin socket answers");

    // Fill the rest of the budget from four more sources: the listener is full (a new client
    // gets the quick 503), and the other listeners are still served.
    let mut held = vec![flood];
    for source in fillers() {
        held.push(idle_from(source, https, PER_SOURCE).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A new client (the neighbour's client keeps its connection alive, and that one is
    // served: the budget counts connections).
    let answer = client_from(&d, NEIGHBOUR).get("cacerts").await;
    eprintln!("HTTPS full: a new client got {}", answer.status);
    answer.assert_error(503);
    assert!(answer.headers.contains_key("retry-after"));
    assert_eq!(
        plain_get(NEIGHBOUR, &crl).await,
        Ok(200),
        "/crl while HTTPS is full"
    );
    assert_eq!(plain_get(NEIGHBOUR, &healthz).await, Ok(200), "/healthz");
    assert!(admin_answers(&d), "the admin socket while HTTPS is full");

    // The flood ends: served again.
    drop(held);
    let t = Instant::now();
    while neighbour
        .send(neighbour.http.get(format!("{}/cacerts", neighbour.base)))
        .await
        .status
        != 200
    {
        assert!(t.elapsed() < Duration::from_secs(10), "not served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!d.stderr().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_flood_from_one_source_spares_other_sources_and_enrollment() {
    let d = daemon(&budget_env());
    with_account(&d, "conn2", "5110");
    let revocation = ready_addr(&d, "revocation_http");
    let crl = format!("http://{revocation}/crl");
    let healthz = format!("http://{}/healthz", ready_addr(&d, "metrics"));

    let flood = idle_from(FLOODER, revocation, BUDGET * 3 / 2).await;
    let (closed, took) = settle(&flood, flood.len() - PER_SOURCE).await;
    eprintln!(
        "revocation: {} idle connections from {FLOODER}: {} held, {closed} closed within {took:?}",
        flood.len(),
        flood.len() - closed
    );
    assert_eq!(
        flood.len() - closed,
        PER_SOURCE,
        "the source keeps exactly its cap"
    );
    let t = Instant::now();
    assert_eq!(
        plain_get(NEIGHBOUR, &crl).await,
        Ok(200),
        "/crl from another source"
    );
    eprintln!("revocation: {NEIGHBOUR} got /crl in {:?}", t.elapsed());
    // Enrollment over HTTPS, even from the flooding source: the budgets are separate.
    let flooder = client_from(&d, FLOODER);
    flooder
        .enroll("conn2", PASSWORD, &p256().csr_der)
        .await
        .assert_status(200);
    assert_eq!(plain_get(FLOODER, &healthz).await, Ok(200), "/healthz");

    // The revocation listener full: HTTPS (cacerts, and /crl on the HTTPS port) still served.
    let mut held = vec![flood];
    for source in fillers() {
        held.push(idle_from(source, revocation, PER_SOURCE).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = plain_get(NEIGHBOUR, &crl).await;
    eprintln!("revocation full: a new client got {refused:?}");
    assert!(
        refused.is_err(),
        "a full listener closes new connections: {refused:?}"
    );
    let neighbour = client_from(&d, NEIGHBOUR);
    neighbour.get("cacerts").await.assert_status(200);
    let over_https = neighbour
        .send(
            neighbour
                .http
                .get(format!("https://127.0.0.1:{}/crl", d.port)),
        )
        .await;
    over_https.assert_status(200);
    assert!(
        admin_answers(&d),
        "the admin socket while revocation is full"
    );
    drop(held);
    assert!(!d.stderr().contains("panicked"));
}

/// How long until the daemon closes `stream`; `None` when it is still open after `limit`.
async fn closed_after(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {} // an answer (e.g. 408): keep reading until the close
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_connections_are_closed_within_the_first_byte_deadline() {
    let d = daemon(&[
        ("ESTCA_SERVER__FIRST_BYTE_TIMEOUT_SECS", "2".to_owned()),
        ("ESTCA_SERVER__HANDSHAKE_TIMEOUT_SECS", "10".to_owned()),
        ("ESTCA_SERVER__HEADER_TIMEOUT_SECS", "10".to_owned()),
        ("ESTCA_ADMIN__MAX_CONNECTIONS", "8".to_owned()),
    ]);
    let listeners = [
        ("https", ready_addr(&d, "https")),
        ("revocation", ready_addr(&d, "revocation_http")),
        ("metrics", ready_addr(&d, "metrics")),
    ];
    let mut silent = Vec::new();
    for (_, addr) in listeners {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // A plain-HTTP client that has started its request is not cut by this deadline (the
    // header timeout, 10 s here, bounds it).
    let mut started_request = tokio::net::TcpStream::connect(listeners[1].1)
        .await
        .unwrap();
    started_request
        .write_all(b"GET /crl HTTP/1.1\r\n")
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for ((name, _), mut stream) in listeners.into_iter().zip(silent) {
        tasks.push(tokio::spawn(async move {
            (
                name,
                closed_after(&mut stream, Duration::from_secs(15)).await,
            )
        }));
    }
    for task in tasks {
        let (name, after) = task.await.unwrap();
        eprintln!("{name}: a silent connection closed after {after:?} (first-byte deadline 2 s)");
        let after = after.unwrap_or_else(|| panic!("{name}: a silent connection stayed open"));
        assert!(
            after >= Duration::from_millis(1500) && after < Duration::from_secs(5),
            "{name}: closed after {after:?}, not near the 2 s deadline"
        );
    }
    assert_eq!(
        closed_after(&mut started_request, Duration::from_secs(2)).await,
        None,
        "a request under way is left to the header timeout"
    );

    // The admin socket is bounded (8 here): silent connections beyond it are closed at once,
    // the rest at the deadline, and the operator is served again.
    let socket = d.dir().path().join("data/admin.sock");
    let admin: Vec<_> = (0..20)
        .map(|_| {
            let s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let closed =
        |conns: &[std::os::unix::net::UnixStream]| conns.iter().filter(|s| is_closed(*s)).count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_once = closed(&admin);
    eprintln!("admin: 20 silent connections, {at_once} closed at once (limit 8)");
    assert_eq!(at_once, 12, "the admin socket holds at most its budget");
    let t = Instant::now();
    while closed(&admin) < 20 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "admin connections stayed open: {}",
            d.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("admin: the other 8 closed {:?} later", t.elapsed());
    assert!(admin_answers(&d), "the operator is served again");
    assert!(!d.stderr().contains("panicked"));
}

/// Starts a daemon that must refuse to start; returns its directory (kept for the checks)
/// and its log.
fn start_refused(dir: TestDir) -> (TestDir, String) {
    match TestDaemon::try_start_in(dir) {
        Ok(d) => {
            let log = d.stderr();
            drop(d);
            panic!("estca started over something that is not a socket; log:\n{log}")
        }
        Err(failure) => {
            let (dir, f) = *failure;
            assert!(
                f.status.is_some_and(|s| !s.success()),
                "exit status {:?}",
                f.status
            );
            (dir, f.stderr)
        }
    }
}

fn socket_path(dir: &TestDir) -> std::path::PathBuf {
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(
        &data,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
    )
    .unwrap();
    data.join("admin.sock")
}

fn assert_names(log: &str, path: &Path, what: &str) {
    assert!(
        log.contains(&path.display().to_string()) && log.contains(what),
        "the refusal must name {} and say it is {what}; log:\n{log}",
        path.display()
    );
}

#[test]
fn a_file_or_symlink_at_the_admin_socket_path_is_left_alone_and_estca_refuses_to_start() {
    // A regular file.
    let dir = TestDir::new(Options::default());
    let path = socket_path(&dir);
    std::fs::write(&path, "precious\n").unwrap();
    let (_dir, log) = start_refused(dir);
    assert_names(&log, &path, "a regular file");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
    eprintln!("regular file: {}", log.lines().last().unwrap_or_default());

    // A symbolic link, to a file that matters.
    let dir = TestDir::new(Options::default());
    let path = socket_path(&dir);
    let target = dir.path().join("precious.txt");
    std::fs::write(&target, "precious\n").unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let (_dir, log) = start_refused(dir);
    assert_names(&log, &path, "a symbolic link");
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    eprintln!("symbolic link: {}", log.lines().last().unwrap_or_default());

    // A directory.
    let dir = TestDir::new(Options::default());
    let path = socket_path(&dir);
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("inside"), "precious\n").unwrap();
    let (_dir, log) = start_refused(dir);
    assert_names(&log, &path, "a directory");
    assert_eq!(
        std::fs::read_to_string(path.join("inside")).unwrap(),
        "precious\n"
    );
}

#[test]
fn a_stale_admin_socket_is_still_replaced() {
    let dir = TestDir::new(Options::default());
    let path = socket_path(&dir);
    // A socket nobody serves any more, as a crash leaves it.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let d = TestDaemon::start_in(dir);
    assert!(admin_answers(&d));
}
