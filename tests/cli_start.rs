//! The `wsauth` binary starting up: `--help` and `--version`, usage errors
//! (exit 2), start-up errors (exit 1), and what stdout says once it listens.

mod common;

use common::process::*;
use common::*;
use std::net::{SocketAddr, TcpListener};

/// Asserts a start-up failure: `code`, and one line on stderr that names no
/// secret and is not a panic.
fn assert_fails_with_one_line(args: &[&str], code: i32, secrets: &[&str]) -> String {
    let run = finish(args);
    assert_eq!(run.code, Some(code), "{args:?}: stderr {:?}", run.stderr);
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "{args:?}: stderr is not one line: {:?}",
        run.stderr
    );
    assert!(run.stderr.ends_with('\n'), "{args:?}: {:?}", run.stderr);
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "{args:?}: {:?}",
        run.stderr
    );
    for secret in secrets {
        assert!(
            !run.stderr.contains(secret),
            "{args:?}: stderr shows {secret:?}: {:?}",
            run.stderr
        );
    }
    assert_eq!(run.stdout, "", "{args:?}: nothing on stdout");
    run.stderr
}

// ---- --help and --version ----

#[test]
fn help_prints_usage_and_exits_0() {
    let run = finish(&["--help"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("--listen"), "{}", run.stdout);
    assert!(run.stdout.contains("--tokens-file"), "{}", run.stdout);
}

#[test]
fn version_prints_the_version_and_exits_0() {
    let run = finish(&["--version"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        run.stdout
    );
}

// ---- usage errors: exit 2 ----

#[test]
fn an_unknown_flag_exits_2_with_one_line() {
    let line = assert_fails_with_one_line(&["--listen", "127.0.0.1:0", "--bogus"], 2, &[]);
    assert!(line.contains("--bogus"), "{line}");
}

#[test]
fn a_missing_value_exits_2_with_one_line() {
    for flag in [
        "--listen",
        "--token",
        "--tokens-file",
        "--max-connections",
        "--log-level",
        "--greeting",
    ] {
        assert_fails_with_one_line(&["--listen", "127.0.0.1:0", flag], 2, &[]);
    }
}

#[test]
fn unparsable_numbers_exit_2_with_one_line() {
    for (flag, value) in [
        ("--max-connections", "many"),
        ("--max-connections", "-1"),
        ("--max-message-bytes", "64k"),
        ("--handshake-timeout", "1.5"),
        ("--idle-timeout", "soon"),
        ("--max-auth-failures", "x"),
        ("--max-auth-failures", "99999999999999999999999999"),
    ] {
        assert_fails_with_one_line(&["--listen", "127.0.0.1:0", flag, value], 2, &[]);
    }
}

#[test]
fn unusable_values_exit_2_with_one_line() {
    for (flag, value) in [
        ("--listen", "nowhere"),
        ("--log-level", "loud"),
        ("--first-message-auth=yes", ""),
    ] {
        let args: Vec<&str> = ["--listen", "127.0.0.1:0", flag, value]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        assert_fails_with_one_line(&args, 2, &[]);
    }
}

#[test]
fn a_token_with_a_second_colon_exits_2_without_showing_the_token() {
    for arg in ["alice:Sekrit42:extra", "a:b:c"] {
        let (_, secret) = arg.split_once(':').unwrap();
        assert_fails_with_one_line(&["--listen", "127.0.0.1:0", "--token", arg], 2, &[secret]);
        let inline = format!("--token={arg}");
        assert_fails_with_one_line(&["--listen", "127.0.0.1:0", &inline], 2, &[secret]);
    }
}

#[test]
fn an_invalid_token_exits_2_without_showing_it() {
    for arg in ["alice:has Space42", "alice:", "tab\tSekrit42"] {
        assert_fails_with_one_line(
            &["--listen", "127.0.0.1:0", "--token", arg],
            2,
            &["Space42", "Sekrit42"],
        );
    }
}

#[test]
fn a_stray_argument_is_named_by_its_position_not_its_text() {
    // `--token alice s3cret`: the token meant as `alice:s3cret`.
    let line = assert_fails_with_one_line(
        &["--listen", "127.0.0.1:0", "--token", "alice", "Sekrit42"],
        2,
        &["Sekrit42"],
    );
    assert!(line.contains("argument 5"), "{line}");
    let line = assert_fails_with_one_line(&["Sekrit42"], 2, &["Sekrit42"]);
    assert!(line.contains("argument 1"), "{line}");
}

#[test]
fn no_usage_error_shows_the_value_it_refuses() {
    for args in [
        &["--max-connections", "Sekrit42"][..],
        &["--max-message-bytes=Sekrit42"],
        &["--handshake-timeout", "Sekrit42"],
        &["--idle-timeout", "Sekrit42"],
        &["--max-auth-failures", "Sekrit42"],
        &["--max-pending-per-ip", "Sekrit42"],
        &["--listen", "Sekrit42"],
        &["--log-level", "Sekrit42"],
        &["--trusted-proxy", "Sekrit42"],
        &["--trusted-proxy", "10.0.0.1/8"],
        &["--jwt-secret-file", "key", "--jwt-leeway", "Sekrit42"],
        &["--Sekrit42!"],
        &["-Sekrit42"],
    ] {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        assert_fails_with_one_line(&all, 2, &["Sekrit42", "10.0.0.1"]);
    }
}

#[test]
fn a_mistyped_token_flag_does_not_show_its_value() {
    assert_fails_with_one_line(
        &["--listen", "127.0.0.1:0", "--tokne=alice:Sekrit42"],
        2,
        &["Sekrit42"],
    );
}

// ---- start-up errors: exit 1 ----

#[test]
fn a_malformed_tokens_file_exits_1_naming_the_line_counted_from_1() {
    let cases: [(&str, &str, &[&str]); 5] = [
        (
            "# users\n\nalice:Sekrit1\nbob Sekrit2\n",
            "line 4",
            &["Sekrit1", "Sekrit2"],
        ),
        ("alice:Sekrit1:1:2\n", "line 1", &["Sekrit1"]),
        ("\n\n# x\nalice:Sekrit1:tomorrow\n", "line 4", &["Sekrit1"]),
        (
            "alice:Sekrit1\n:Sekrit2\n",
            "line 2",
            &["Sekrit1", "Sekrit2"],
        ),
        (
            "alice:Sekrit1\r\n\r\n#c\r\nbob:has Space2\r\n",
            "line 4",
            &["Sekrit1", "Space2"],
        ),
    ];
    for (i, (text, line, secrets)) in cases.into_iter().enumerate() {
        let file = TempFile::new(&format!("malformed-{i}"), text.as_bytes());
        let message = assert_fails_with_one_line(
            &["--listen", "127.0.0.1:0", "--tokens-file", file.path()],
            1,
            secrets,
        );
        assert!(message.contains(line), "{text:?}: {message:?}");
    }
}

#[test]
fn a_tokens_file_that_is_not_utf8_exits_1_naming_the_line() {
    let file = TempFile::new("latin1", b"alice:Sekrit1\nbob:caf\xe9\n");
    let message = assert_fails_with_one_line(
        &["--listen", "127.0.0.1:0", "--tokens-file", file.path()],
        1,
        &["Sekrit1"],
    );
    assert!(message.contains("line 2"), "{message:?}");
}

#[test]
fn an_unreadable_tokens_file_exits_1_with_one_line() {
    let missing = std::env::temp_dir().join("wsauth-cli-no-such-file.tokens");
    let dir = std::env::temp_dir();
    for path in [missing.to_str().unwrap(), dir.to_str().unwrap()] {
        assert_fails_with_one_line(&["--listen", "127.0.0.1:0", "--tokens-file", path], 1, &[]);
    }
}

#[test]
fn an_address_in_use_exits_1_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = assert_fails_with_one_line(
        &["--listen", &addr, "--token", "alice:Sekrit42"],
        1,
        &["Sekrit42"],
    );
    assert!(line.contains(&addr), "{line:?}");
}

#[test]
fn an_address_not_on_this_machine_exits_1_with_one_line() {
    // 192.0.2.0/24 is reserved for documentation: never a local address.
    assert_fails_with_one_line(&["--listen", "192.0.2.1:0"], 1, &[]);
}

// ---- what stdout says ----

#[test]
fn without_a_token_stdout_names_the_address_and_a_demo_token_that_works() {
    let (mut wsauth, addr) = Wsauth::serve(&[], &[]);
    assert_ne!(addr.port(), 0);
    let second = wsauth.next_line().expect("a second line");
    let token = second
        .strip_prefix(&format!("open http://{addr}/#token="))
        .and_then(|rest| rest.strip_suffix(" in a browser"))
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"));
    assert!(token.len() >= 22, "{token:?} is under 128 bits");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
        "{token:?} is not URL-safe"
    );
    let bearer = format!("Bearer {token}");
    assert_eq!(
        greeting_with(addr, "/ws", &[("Authorization", &bearer)]),
        "Hello demo"
    );
    assert_eq!(
        refused_status(connect(addr, "/ws", &[("Authorization", "Bearer nope")])),
        401
    );
    let (rest, stderr) = wsauth.stop();
    assert_eq!(rest, Vec::<String>::new(), "nothing more on stdout");
    assert!(!stderr.contains(token), "the log shows the demo token");
}

#[test]
fn each_run_makes_a_new_demo_token() {
    let tokens: Vec<String> = (0..2)
        .map(|_| {
            let (mut wsauth, _) = Wsauth::serve(&[], &[]);
            let line = wsauth.next_line().expect("a second line");
            line.split("#token=").nth(1).unwrap().to_string()
        })
        .collect();
    assert_ne!(tokens[0], tokens[1]);
}

#[test]
fn with_a_token_only_the_listen_line_is_printed() {
    let (wsauth, addr) = Wsauth::serve(&["--token", "alice:Sekrit42"], &[]);
    assert_eq!(
        greeting_with(addr, "/ws", &[("Authorization", "Bearer Sekrit42")]),
        "Hello alice"
    );
    let (rest, _) = wsauth.stop();
    assert_eq!(rest, Vec::<String>::new());
}

#[test]
fn with_a_tokens_file_only_the_listen_line_is_printed() {
    let file = TempFile::new("only", b"# nobody yet\n");
    let (wsauth, addr) = Wsauth::serve(&["--tokens-file", file.path()], &[]);
    assert_eq!(
        get(addr, "/healthz", &[]).split("\r\n").next(),
        Some("HTTP/1.1 200 OK")
    );
    let (rest, _) = wsauth.stop();
    assert_eq!(rest, Vec::<String>::new());
}

#[test]
fn a_token_without_a_user_belongs_to_user() {
    let (wsauth, addr) = Wsauth::serve(&["--token", "Sekrit42"], &[]);
    assert_eq!(
        greeting_with(addr, "/ws", &[("Authorization", "Bearer Sekrit42")]),
        "Hello user"
    );
    drop(wsauth);
}

#[test]
fn an_ipv6_address_is_printed_in_brackets() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let mut wsauth = Wsauth::spawn(&["--listen", "[::1]:0"], &[]);
    let first = wsauth.next_line().expect("a listen line");
    let port = first
        .strip_prefix("wsauth listening on http://[::1]:")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    let port: u16 = port.parse().unwrap();
    assert_ne!(port, 0);
    let second = wsauth.next_line().expect("a second line");
    assert!(
        second.starts_with(&format!("open http://[::1]:{port}/#token=")),
        "{second:?}"
    );
    let addr = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
    assert_eq!(status(&get(addr, "/healthz", &[])), 200);
}
