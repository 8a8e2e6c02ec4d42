//! IPv6 sources are counted per /64 (issue 10, finding 10), end to end: a client that takes a
//! new address from its /64 for every attempt is still one source to the failed-login
//! throttle and to the per-source connection cap, while another /64 is another source.
//!
//! Loopback has only `::1`, so the test re-runs itself in a network namespace of its own
//! (`unshare -n`, or `unshare -rn` without root) where loopback also holds twelve addresses of
//! 2001:db8:1:2::/64 and one of 2001:db8:1:3::/64, and clients bind to them. Where no namespace can be made, the test says so and is skipped, unless
//! `REQUIRE_ALL_TESTS` is set (as `.ci/run` does), in which case it fails.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Addresses 2001:db8:1:2::1 to ::HOSTS are given to loopback in the namespace.
const HOSTS: u16 = 12;

/// Set in the copy of the test that runs inside the namespace.
const INSIDE: &str = "TEST_IPV6_NETNS_INSIDE";

/// An address of `network` (2 or 3) in 2001:db8:1:<network>::/64 with host part `host`.
fn addr(network: u16, host: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, network, 0, 0, 0, host))
}

/// Runs `test` of this file inside a new network namespace; false if none could be made.
fn rerun_in_namespace(test: &str) -> bool {
    let exe = std::env::current_exe().unwrap();
    for unshare in [&["-n"][..], &["-rn"][..]] {
        let probe = Command::new("unshare").args(unshare).arg("true").status();
        if !probe.is_ok_and(|s| s.success()) {
            continue;
        }
        let status = Command::new("unshare")
            .args(unshare)
            .arg(&exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(INSIDE, "1")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{test} failed inside its network namespace"
        );
        return true;
    }
    false
}

/// Runs `body` in a network namespace with the two test networks local, or skips.
fn in_namespace(test: &str, body: impl FnOnce()) {
    if std::env::var_os(INSIDE).is_some() {
        let mut commands = vec![vec![
            "link".to_owned(),
            "set".into(),
            "lo".into(),
            "up".into(),
        ]];
        let hosts = (1..=HOSTS).map(|h| addr(2, h)).chain([addr(3, 1)]);
        for ip in hosts {
            commands.push(
                [
                    "-6",
                    "addr",
                    "add",
                    &format!("{ip}/128"),
                    "dev",
                    "lo",
                    "nodad",
                ]
                .map(str::to_owned)
                .to_vec(),
            );
        }
        for args in commands {
            let ok = Command::new("ip").args(&args).status();
            assert!(ok.is_ok_and(|s| s.success()), "ip {args:?} failed");
        }
        body();
        return;
    }
    if !rerun_in_namespace(test) {
        let why = "no network namespace could be made here (`unshare -n` needs root or \
                   unprivileged user namespaces), so IPv6 sources cannot be tested";
        skip(test, why);
    }
}

fn ipv6_daemon(env: &[(&str, &str)]) -> TestDaemon {
    let mut all = vec![("ESTCA_SERVER__LISTEN", "[::]:0")];
    all.extend_from_slice(env);
    TestDaemon::start(Options {
        env: all
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    })
}

#[test]
fn the_failed_login_throttle_counts_an_ipv6_64_once() {
    in_namespace("the_failed_login_throttle_counts_an_ipv6_64_once", || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let d = ipv6_daemon(&[
                ("ESTCA_AUTH__MAX_FAILURES_PER_SOURCE", "5"),
                ("ESTCA_AUTH__FAILURE_WINDOW_SECS", "3600"),
            ]);
            let root = d.dir().root_ca_pem();
            let csr = p256().csr_der;
            // A new /128 for every guess, all from one /64.
            let mut statuses = Vec::new();
            for host in 1..=HOSTS {
                let a = EstClient::from_source(d.port, &root, addr(2, host))
                    .enroll(&format!("nobody{host}"), "wrong password", &csr)
                    .await;
                statuses.push(a.status);
            }
            eprintln!("12 guesses from 12 addresses of one /64 (budget 5): {statuses:?}");
            assert_eq!(&statuses[..5], &[401; 5]);
            assert_eq!(&statuses[5..], &[429; 7], "{statuses:?}");
            // Another /64 is another source.
            let other = EstClient::from_source(d.port, &root, addr(3, 1))
                .enroll("nobody", "wrong password", &csr)
                .await;
            assert_eq!(other.status, 401, "{other:?}");
            // History records the real address, not the network: the fifth guess's, and the
            // first refusal's (::6); the refusals after it are counted, not recorded.
            let history = d.cli_ok(&["--json", "history", "--limit", "100"], None);
            assert!(history.contains("2001:db8:1:2::5"), "{history}");
            assert!(history.contains("2001:db8:1:2::6"), "{history}");
            assert!(!history.contains("2001:db8:1:2::c"), "{history}");
        });
    });
}

#[test]
fn the_connection_cap_counts_an_ipv6_64_once() {
    in_namespace("the_connection_cap_counts_an_ipv6_64_once", || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let d = ipv6_daemon(&[("ESTCA_SERVER__MAX_CONNECTIONS_PER_SOURCE", "4")]);
            let to = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), d.port);
            // Ten idle connections, each from its own address of one /64.
            let mut idle = Vec::new();
            for host in 1..=10 {
                let socket = tokio::net::TcpSocket::new_v6().unwrap();
                socket.bind(SocketAddr::new(addr(2, host), 0)).unwrap();
                idle.push(socket.connect(to).await.unwrap().into_std().unwrap());
            }
            let started = Instant::now();
            let closed = loop {
                let closed = idle.iter().filter(|s| is_closed(s)).count();
                if closed >= 6 || started.elapsed() > Duration::from_secs(3) {
                    break closed;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            eprintln!(
                "10 idle connections from 10 addresses of one /64 (cap 4): {closed} closed in {:?}",
                started.elapsed()
            );
            assert_eq!(closed, 6, "the /64 holds exactly its cap");
            // Another /64 is served meanwhile.
            EstClient::from_source(d.port, &d.dir().root_ca_pem(), addr(3, 1))
                .get("cacerts")
                .await
                .assert_status(200);
            drop(idle);
        });
    });
}

/// Whether the daemon closed a connection (end of stream or reset), without waiting.
fn is_closed(stream: &std::net::TcpStream) -> bool {
    use std::io::Read;
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match (&*stream).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}
