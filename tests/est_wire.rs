//! What EST answers look like on the wire, as `curl -i` prints them byte for byte: header
//! names in their canonical spelling (libest compares them exactly), base64 in RFC 2045 lines
//! of 76 characters unless `est.single_line_base64`, an empty 401 challenge, the sentence as
//! reason phrase, 404s that say why, and 405s that name the allowed methods.

mod common;

use common::curl_raw as curl;
use common::*;

fn setup(options: Options) -> (TestDaemon, tempfile::TempDir, std::path::PathBuf) {
    let daemon = TestDaemon::start(options);
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root.pem");
    std::fs::write(&root, daemon.dir().root_ca_pem()).unwrap();
    (daemon, scratch, root)
}

/// The body of a raw answer (after the blank line).
fn body(raw: &str) -> &str {
    raw.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn header_names_base64_lines_challenges_and_explanations_on_the_wire() {
    let (d, _scratch, root) = setup(Options::default());

    let raw = curl(&d, &root, "/.well-known/est/cacerts", &[]);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        raw.contains("\r\nContent-Type: application/pkcs7-mime\r\n"),
        "{raw}"
    );
    assert!(
        raw.contains("\r\nContent-Transfer-Encoding: base64\r\n"),
        "{raw}"
    );
    assert!(raw.contains("\r\nContent-Length: "), "{raw}");
    let lines: Vec<&str> = body(&raw).split_terminator("\r\n").collect();
    assert!(lines.len() > 1, "{raw}");
    assert!(lines.iter().all(|l| l.len() <= 76), "{raw}");
    assert!(
        lines[..lines.len() - 1].iter().all(|l| l.len() == 76),
        "{raw}"
    );
    assert_eq!(pkcs7_certificates(body(&raw)).len(), 2);

    // A request without credentials: the challenge, with an empty body.
    let raw = curl(
        &d,
        &root,
        "/.well-known/est/simpleenroll",
        &[
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            "AAAA",
        ],
    );
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    assert!(
        raw.contains("\r\nWWW-Authenticate: Basic realm=\"estca\""),
        "{raw}"
    );
    assert!(raw.contains("\r\nContent-Length: 0\r\n"), "{raw}");
    assert_eq!(body(&raw), "", "{raw}");
    // With (wrong) credentials: 401 with the sentence, also as reason phrase.
    let raw = curl(
        &d,
        &root,
        "/.well-known/est/simpleenroll",
        &[
            "--user",
            "nobody:wrong",
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            "AAAA",
        ],
    );
    assert!(
        raw.starts_with("HTTP/1.1 401 authentication failed"),
        "{raw}"
    );
    assert!(body(&raw).starts_with("authentication failed"), "{raw}");

    // Optional operations and CA labels: 404 saying why.
    for (path, says) in [
        ("/.well-known/est/fullcmc", "Full CMC"),
        ("/.well-known/est/mylabel/serverkeygen", "no CA labels"),
        ("/.well-known/est/mylabel/simpleenroll", "no CA labels"),
        (
            "/.well-known/est/nonsense",
            "cacerts, csrattrs, simpleenroll",
        ),
        // The prefix alone is under it too: the operations, not "EST is under".
        ("/.well-known/est/", "cacerts, csrattrs, simpleenroll"),
        ("/.well-known/est", "cacerts, csrattrs, simpleenroll"),
    ] {
        let raw = curl(&d, &root, path, &[]);
        assert!(raw.starts_with("HTTP/1.1 404 "), "{raw}");
        assert!(body(&raw).contains(says), "{path}: {raw}");
        assert!(!body(&raw).contains("EST is under"), "{path}: {raw}");
    }

    // A wrong method: 405 with Allow and a sentence naming the methods.
    let raw = curl(&d, &root, "/.well-known/est/cacerts", &["-X", "DELETE"]);
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
    assert!(raw.contains("\r\nAllow: GET,HEAD\r\n"), "{raw}");
    assert!(body(&raw).contains("accepts GET,HEAD"), "{raw}");
    // serverkeygen is served (per contract, tests/serverkeygen.rs): POST only.
    let raw = curl(&d, &root, "/.well-known/est/serverkeygen", &[]);
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
    assert!(raw.contains("\r\nAllow: POST\r\n"), "{raw}");
    let raw = curl(&d, &root, "/api/v1/history", &["-X", "PATCH"]);
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
    assert!(body(&raw).contains("\"method_not_allowed\""), "{raw}");
}

#[test]
fn single_line_base64_is_a_setting() {
    let (d, _scratch, root) = setup(Options {
        extra_toml: "\n[est]\nsingle_line_base64 = true\n".into(),
        ..Options::default()
    });
    let raw = curl(&d, &root, "/.well-known/est/cacerts", &[]);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let b = body(&raw);
    assert!(b.len() > 76 && !b.contains('\n'), "{raw}");
    assert_eq!(pkcs7_certificates(b).len(), 2);
}
