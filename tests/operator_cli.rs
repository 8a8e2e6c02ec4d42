//! What an operator meets at the command line (issue 15): the password prompt under a
//! terminal, tables holding Japanese names, JSON output and errors, exit codes.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// `--password-stdin` at a terminal prompts twice without echo, and the password typed is the
/// one stored: the holder enrolls with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_prompt_at_a_terminal_does_not_echo() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("5110");
    let typed = "typed at the terminal 1";
    let mut command = estca_command();
    command.arg("--config").arg(&d.dir().config).args([
        "account",
        "add",
        "prompt1",
        "--contract",
        "5110",
        "--role",
        "user",
        "--name",
        "Prompt Taro",
        "--password-stdin",
    ]);
    let mut session = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    let before = session.exp_string("Password: ").unwrap();
    session.send_line(typed).unwrap();
    let between = session.exp_string("Password again: ").unwrap();
    session.send_line(typed).unwrap();
    let after = session.exp_eof().unwrap();
    let shown = format!("{before}{between}{after}");
    assert!(!shown.contains(typed), "the password was echoed: {shown}");
    assert!(shown.contains("prompt1"), "{shown}");
    d.client()
        .enroll("prompt1", typed, &p256().csr_der)
        .await
        .assert_status(200);

    // Two different passwords: refused, nothing changed.
    let mut command = estca_command();
    command.arg("--config").arg(&d.dir().config).args([
        "account",
        "passwd",
        "prompt1",
        "--password-stdin",
    ]);
    let mut session = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    session.exp_string("Password: ").unwrap();
    session.send_line("one password").unwrap();
    session.exp_string("Password again: ").unwrap();
    session.send_line("another password").unwrap();
    let after = session.exp_eof().unwrap();
    assert!(after.contains("the two passwords differ"), "{after}");
    assert!(!after.contains("one password"), "{after}");
}

/// Runs `estca --config FILE ARGS` with extra environment variables; exit code, stdout, stderr.
fn run(dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = estca_command()
        .arg("--config")
        .arg(&dir.config)
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A failure with `--json`: nothing on stdout, one JSON object on stderr; its kind and code.
fn json_failure(dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(dir, &all, env);
    assert_eq!(out, "", "{args:?}");
    let error: serde_json::Value = serde_json::from_str(&err)
        .unwrap_or_else(|e| panic!("{args:?}: stderr is not JSON ({e}): {err}"));
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{err}"
    );
    (code, error["error"].as_str().unwrap_or_default().to_owned())
}

/// `--json` means JSON on stdout for results and a JSON object on stderr for failures, and
/// each kind of failure has the exit code the README documents.
#[test]
fn json_output_errors_and_exit_codes() {
    let d = TestDaemon::start(Options::default());
    let dir = d.dir();
    let checked = dir.cli_json(&["check-config"]);
    assert_eq!(checked["valid"], true);
    assert_eq!(checked["config"]["server"]["listen"], "127.0.0.1:0");

    dir.add_contract("5110");
    assert_eq!(
        json_failure(dir, &["account", "show", "nosuch1"], &[]),
        (5, "not_found".into())
    );
    assert_eq!(
        json_failure(dir, &["contract", "add", "5110", "--name", "again"], &[]),
        (6, "refused".into())
    );
    assert_eq!(
        json_failure(
            dir,
            &["account", "show", "x"],
            &[("ESTCA_SERVER__LISTEN", "nowhere")]
        ),
        (3, "configuration".into())
    );
    // Without --json the same failure is one line of text.
    let (code, out, err) = run(dir, &["account", "show", "nosuch1"], &[]);
    assert_eq!((code, out.as_str()), (5, ""));
    assert!(
        err.starts_with("estca: ") && err.lines().count() == 1,
        "{err}"
    );
    // Usage errors are clap's: code 2.
    assert_eq!(run(dir, &["account", "show"], &[]).0, 2);
    // An unknown choice too, also with --json, and the choices are named.
    for args in [
        &[
            "--json", "account", "revoke", "nosuch1", "--reason", "bogus",
        ][..],
        &[
            "root",
            "revoke-issuing",
            "01",
            "--dir",
            "r",
            "--reason",
            "bogus",
        ],
    ] {
        let (code, _, err) = run(dir, args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("invalid value 'bogus'") && err.contains("keyCompromise"),
            "{args:?}: {err}"
        );
    }
    // --help documents the codes.
    let (_, help, _) = run(dir, &["--help"], &[]);
    assert!(
        help.contains("4 daemon unreachable, 5 not found, 6 refused"),
        "{help}"
    );

    let dir = d.stop();
    assert_eq!(
        json_failure(&dir, &["account", "show", "x"], &[]),
        (4, "unreachable".into())
    );
}

/// `history` pages: `--cursor` fetches the page a `next_cursor` names, `--all` every page.
#[test]
fn history_cursor_and_all() {
    let d = TestDaemon::start(Options::default());
    let dir = d.dir();
    dir.add_contract("5110");
    for id in ["page1", "page2", "page3"] {
        dir.add_account(id, "5110", "user");
    }
    // Reading history is recorded too (a read-only management call), so each call adds an
    // entry: compare sequence numbers, not whole pages.
    let seqs = |page: &serde_json::Value| -> Vec<u64> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    let first = dir.cli_json(&["history", "--limit", "1"]);
    assert_eq!(seqs(&first).len(), 1);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, _, hint) = dir.cli(&["history", "--limit", "1"], None);
    assert!(hint.contains("older entries: add --cursor "), "{hint}");
    let second = dir.cli_json(&["history", "--limit", "1", "--cursor", &cursor]);
    assert_eq!(seqs(&second), vec![seqs(&first)[0] - 1]);

    let all = dir.cli_json(&["history", "--limit", "1", "--all"]);
    let all_seqs = seqs(&all);
    // Every entry down to the first, newest first, each once.
    assert_eq!(all_seqs.last(), Some(&1), "{all}");
    assert!(
        all_seqs.windows(2).all(|w| w[0] == w[1] + 1),
        "{all_seqs:?}"
    );
    let created: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "account_create")
        .filter_map(|e| e["account"].as_str())
        .collect();
    assert_eq!(created, vec!["page3", "page2", "page1"]);
    assert!(all["next_cursor"].is_null());
}

/// A PEM CSR whose line breaks curl's `--data` stripped is refused with the fix, and an ID the
/// daemon would refuse is refused by the CLI with the ID rule, not a decoding message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_say_what_to_do() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("5110");
    d.dir().add_account("curl1", "5110", "user");
    let pem = pem_rfc7468::encode_string(
        "CERTIFICATE REQUEST",
        pem_rfc7468::LineEnding::LF,
        &p256().csr_der,
    )
    .unwrap();
    let flattened = pem.replace('\n', "");
    let answer = d
        .client()
        .enroll_raw(
            Some(("curl1", PASSWORD)),
            Some("application/pkcs10"),
            flattened.into_bytes(),
            false,
        )
        .await;
    answer.assert_error(400);
    assert!(answer.body.contains("--data-binary"), "{}", answer.body);

    // Plain HTTP to the HTTPS port: a readable HTTP answer, not a TLS alert.
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(&mut tcp, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut tcp, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("This port speaks HTTPS only"), "{answer}");

    let (code, out, err) = run(d.dir(), &["account", "show", "bad id!"], &[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("'bad id!'") && err.contains("an ID"), "{err}");
    assert!(!err.contains("line 1 column"), "{err}");
}

/// The fields of a text log line after its `<N> LEVEL target: message` head: names in order,
/// and values; `None` when the line is not of that form.
fn log_line(line: &str) -> Option<(String, Vec<(String, String)>)> {
    let (head, rest) = line.split_once(": ")?;
    let mut words = rest.split(' ');
    let mut message = Vec::new();
    let mut fields = Vec::new();
    for word in words.by_ref() {
        match word.split_once('=') {
            Some((name, value)) => fields.push((name.to_owned(), value.to_owned())),
            None if fields.is_empty() => message.push(word),
            None => return None,
        }
    }
    Some((format!("{head}: {}", message.join(" ")), fields))
}

/// The README's log samples are what the daemon writes: the same head and message, the same
/// fields in the same order, and every value plain (RFC 3339 times, no `Some(…)`/`None`, no
/// float noise, no `-` for an ID).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_log_samples_match_real_output() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Logs and metrics").unwrap()..];
    let block = &section[section.find("```text\n").unwrap() + 8..];
    let samples: Vec<&str> = block[..block.find("```").unwrap()].lines().collect();
    assert!(samples.len() >= 3, "{samples:?}");

    let d = TestDaemon::start(Options {
        env: vec![
            // Under systemd: the `<N>` priority and no timestamp of our own, as in the README.
            ("JOURNAL_STREAM".into(), "8:12345".into()),
            (
                "ESTCA_LOG__LEVEL".into(),
                "warn,estca::server=info,estca::ra=info,estca::revocation=info".into(),
            ),
        ],
        ..Options::default()
    });
    d.dir().add_contract("5110");
    d.dir().add_account("nozawa1", "5110", "user");
    let c = d.client();
    c.enroll("nozawa1", PASSWORD, &p256().csr_der)
        .await
        .assert_status(200);
    c.enroll("nozawa1", PASSWORD, &p256().csr_der)
        .await
        .assert_status(409);
    c.enroll("nozawa1", "wrong password", &p256().csr_der)
        .await
        .assert_error(401);
    d.cli_ok(&["account", "revoke", "nozawa1"], None);
    // The request line is written once the answer is sent; give it a moment.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let stderr = d.stderr();
    let real: Vec<(String, Vec<(String, String)>)> = stderr.lines().filter_map(log_line).collect();
    for sample in samples {
        let (head, fields) = log_line(sample).unwrap_or_else(|| panic!("README: {sample}"));
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        let status = fields.iter().find(|(n, _)| n == "status").map(|(_, v)| v);
        let matching = real.iter().find(|(h, f)| {
            *h == head
                && f.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>() == names
                && status.is_none_or(|s| f.iter().any(|(n, v)| n == "status" && v == s))
        });
        let Some((_, values)) = matching else {
            panic!("README sample not in the daemon's output:\n{sample}\n--- output:\n{stderr}");
        };
        for (name, value) in values {
            assert!(
                !value.contains("Some(")
                    && value != "None"
                    && value != "-"
                    && !value.starts_with('"'),
                "{name}={value}: not a plain value\n{stderr}"
            );
            if name == "latency_ms" {
                let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
                assert!(decimals <= 1, "{name}={value}\n{stderr}");
            }
        }
    }
}

/// `--log-format` belongs to `serve` only; completions and the manual page are generated
/// (without a configuration: even a broken one does not stop them); `--version` names the
/// commit.
#[test]
fn help_completions_man_page_and_version() {
    let dir = TestDir::new(Options::default());
    let (code, _, err) = run(&dir, &["account", "show", "x", "--log-format", "json"], &[]);
    assert_eq!(code, 2, "{err}");
    let (_, help, _) = run(&dir, &["serve", "--help"], &[]);
    assert!(help.contains("--log-format"), "{help}");
    let (_, help, _) = run(&dir, &["account", "show", "--help"], &[]);
    assert!(!help.contains("--log-format"), "{help}");

    let broken = [("ESTCA_SERVER__LISTEN", "nowhere")];
    for (shell, marker) in [
        ("bash", "complete -F _estca"),
        ("zsh", "#compdef estca"),
        ("fish", "complete -c estca"),
    ] {
        let (code, script, err) = run(&dir, &["completions", shell], &broken);
        assert_eq!(code, 0, "{err}");
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("reissue"), "{shell}: subcommands completed");
    }
    let (code, page, err) = run(&dir, &["man"], &broken);
    assert_eq!(code, 0, "{err}");
    assert!(
        page.contains(".TH estca 1") && page.contains(r"estca\-check\-config"),
        "{page}"
    );
    if let Ok(out) = Command::new("bash")
        .args(["-n", "-c"])
        .arg(run(&dir, &["completions", "bash"], &[]).1)
        .output()
    {
        assert!(
            out.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let (_, version, _) = run(&dir, &["--version"], &[]);
    let version = version.trim();
    assert!(
        version.starts_with(&format!("estca {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(!version.contains("unknown"), "built outside git? {version}");
}

/// `estca account remove`: on a terminal it shows the ID, its name and what removal does and
/// removes only after `yes`; without a terminal it needs `--yes`; `--json` prints the removed
/// ID, its certificate revoked as cessationOfOperation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_remove_confirms_on_a_terminal_and_needs_yes_elsewhere() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("5110");
    d.dir().add_account("leaver1", "5110", "user");
    d.dir().add_account("leaver2", "5110", "user");
    enroll_new(&d, "leaver1").await;
    let prompt = |answer: &str| {
        let mut command = estca_command();
        command
            .arg("--config")
            .arg(&d.dir().config)
            .args(["account", "remove", "leaver1"]);
        let mut session = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
        let question = session.exp_string("Type yes to remove it: ").unwrap();
        session.send_line(answer).unwrap();
        (question, session.exp_eof().unwrap())
    };

    let (question, after) = prompt("no");
    for shown in [
        "leaver1",
        "of contract 5110",
        "will be revoked (cessationOfOperation)",
    ] {
        assert!(question.contains(shown), "{shown}: {question}");
    }
    assert!(after.contains("not removed"), "{after}");
    assert!(d.dir().account("leaver1")["removed_at"].is_null());

    let (_, after) = prompt("yes");
    assert!(after.contains("removed at"), "{after}");
    assert!(d.dir().account("leaver1")["removed_at"].is_string());

    // No terminal: refused without --yes, nothing changed.
    let (status, _, err) = d.cli(&["account", "remove", "leaver2"], None);
    assert!(!status.success());
    assert!(err.contains("--yes"), "{err}");
    assert!(d.dir().account("leaver2")["removed_at"].is_null());
    let removed = d.cli_json(&["account", "remove", "leaver2", "--yes"]);
    assert!(removed["removed_at"].is_string(), "{removed}");
    assert!(removed["certificate"].is_null(), "{removed}");

    // Gone from the list, and never created again.
    let list = d.cli_ok(&["account", "list"], None);
    assert!(!list.contains("leaver"), "{list}");
    let (status, _, err) = d.cli(
        &[
            "account",
            "add",
            "leaver1",
            "--contract",
            "5110",
            "--role",
            "user",
            "--name",
            "Again",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(!status.success());
    assert!(err.contains("was removed"), "{err}");
}

/// Runs `estca --config FILE ARGS` with standard output a pipe nobody reads any more, as in
/// `estca … | head -1` once `head` has exited; exit code and stderr.
fn run_into_closed_pipe(dir: &TestDir, args: &[&str]) -> (i32, String) {
    // The write end of a pipe whose only reader, `true`, has exited: every write fails.
    let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let closed = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    let out = estca_command()
        .arg("--config")
        .arg(&dir.config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(closed))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Output into a closed pipe (`estca cert show SERIAL | head -1`) is a failure with a message
/// and exit code 1, as for `estca man`, never a panic (exit code 101).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_into_a_closed_pipe_fails_with_a_message_not_a_panic() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("5110");
    d.dir().add_account("piped1", "5110", "user");
    enroll_new(&d, "piped1").await;
    let serial = d.dir().account("piped1")["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    for args in [
        &["cert", "show", &serial][..],
        &["--json", "cert", "show", &serial],
        &["account", "show", "piped1"],
        &["account", "list"],
        &["contract", "list"],
        &["history", "piped1"],
        &["app", "list"],
        &["crl", "show"],
        &["check-config"],
        &["man"],
    ] {
        let (code, err) = run_into_closed_pipe(d.dir(), args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(code, 1, "{args:?}: {err}");
        // "estca: cannot …", or with --json {"error":"other","message":"cannot …"}.
        assert!(
            err.contains("cannot write to standard output: Broken pipe"),
            "{args:?}: {err}"
        );
    }

    // --reason takes the RFC 5280 names in any case.
    let revoked = d.cli_json(&["account", "revoke", "piped1", "--reason", "KEYCOMPROMISE"]);
    assert_eq!(
        revoked["certificate"]["revocation"]["reason"], "keyCompromise",
        "{revoked}"
    );
}

/// `estca init`: a production configuration without a passphrase is refused before the CA
/// directory is created, and the text output gives dates in RFC 3339, as every command does.
#[test]
fn init_refused_leaves_no_directory_and_prints_rfc3339_dates() {
    let dir = TestDir::new(Options::default());
    let (code, out, err) = run(&dir, &["init"], &[("ESTCA_CA__CREATE_IF_MISSING", "false")]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("--unencrypted"), "{err}");
    assert!(!dir.ca_dir().exists(), "{err}");

    let (code, out, err) = run(&dir, &["init"], &[]);
    assert_eq!(code, 0, "{err}");
    let until = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("valid until "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339).is_ok()
            && until.ends_with('Z'),
        "{out}"
    );
}
