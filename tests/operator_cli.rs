//! What an operator meets at the command line (issue 15): the password prompt under a
//! terminal, tables holding Japanese names, JSON output and errors, exit codes.

mod common;

use std::process::Command;

use common::*;

/// `--password-stdin` at a terminal prompts twice without echo, and the password typed is the
/// one stored: the holder enrolls with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_prompt_at_a_terminal_does_not_echo() {
    let d = TestDaemon::start(Options::default());
    d.dir().add_contract("5110");
    let typed = "typed at the terminal 1";
    let mut command = Command::new(estca_bin());
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
    let mut command = Command::new(estca_bin());
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
