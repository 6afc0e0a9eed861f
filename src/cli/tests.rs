//! Unit tests of the parent module.

use super::*;

fn run(args: &[&str]) -> Result<Options, UsageError> {
    match parse(args.iter().map(|s| s.to_string()))? {
        Command::Run(options) => Ok(*options),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn token_user_is_before_the_first_colon() {
    let options = run(&["--token", "alice:s3cret", "--token=plain"]).expect("valid in this test");
    assert_eq!(options.tokens[0].user, "alice");
    assert_eq!(options.tokens[1].user, "user");
    assert_eq!(options.tokens[1].token, "plain");
    let error = run(&["--token", "a:b:c"]).expect_err("this input is refused");
    assert!(!error.0.contains("b:c"));
}

#[test]
fn flags_set_the_config() {
    let options = run(&[
        "--idle-timeout",
        "0",
        "--greeting",
        "",
        "--first-message-auth",
        "--max-auth-failures=0",
        "--allow-origin",
        "http://a",
        "--allow-origin",
        "*",
        "--listen",
        "[::1]:0",
    ])
    .expect("valid in this test");
    assert_eq!(options.config.idle_timeout, None);
    assert_eq!(options.greeting, "");
    assert!(options.config.first_message_auth);
    assert_eq!(options.config.max_auth_failures, 0);
    assert_eq!(options.config.allowed_origins, ["http://a", "*"]);
    assert_eq!(options.listen, "[::1]:0");
}

#[test]
fn proxy_flags_set_the_config() {
    let options = run(&[
        "--trusted-proxy",
        "10.0.0.0/8",
        "--trusted-proxy=::1",
        "--proxy-protocol",
        "--metrics",
        "--max-pending-per-ip",
        "0",
        "--publish-key-file=/etc/wsauth/publish.key",
    ])
    .expect("valid in this test");
    assert_eq!(
        options.publish_key_file.as_deref(),
        Some(std::path::Path::new("/etc/wsauth/publish.key"))
    );
    assert_eq!(options.config.max_pending_per_ip, 0);
    let trusted = &options.config.trusted_proxies;
    assert!(trusted.contains("10.1.2.3".parse().expect("an IP")));
    assert!(trusted.contains("::1".parse().expect("an IP")));
    assert!(!trusted.contains("192.0.2.1".parse().expect("an IP")));
    assert!(options.config.proxy_protocol);
    assert!(options.config.metrics);
    for args in [
        &["--trusted-proxy", "10.0.0.1/8"][..],
        &["--trusted-proxy", "nowhere"],
        &["--metrics=yes"],
    ] {
        assert!(run(args).is_err(), "{args:?}");
    }
}

#[test]
fn a_stray_argument_is_named_by_position_and_a_flag_by_name() {
    let stray = run(&["--token", "alice", "s3cret"]).expect_err("refused");
    assert_eq!(stray.0, "argument 3 is not a flag");
    let unknown = run(&["--bogus=s3cret"]).expect_err("refused");
    assert_eq!(unknown.0, "unknown flag `--bogus`");
    let odd = run(&["--S3cret!"]).expect_err("refused");
    assert_eq!(odd.0, "argument 1 is not a flag");
}

#[test]
fn bad_values_are_usage_errors() {
    for args in [
        &["--max-connections", "0"][..],
        &["--max-message-bytes", "x"],
        &["--listen", "nowhere"],
        &["--log-level", "loud"],
        &["--bogus"],
        &["--greeting"],
    ] {
        assert!(run(args).is_err(), "{args:?}");
    }
}

#[test]
fn the_systemd_units_command_line_is_one_wsauth_accepts() {
    let unit = include_str!("../../deploy/systemd/wsauth.service");
    let exec_start = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let args = exec_start.split_whitespace().skip(1).map(String::from);
    match parse(args) {
        Ok(Command::Run(_)) => {}
        other => panic!("wsauth refuses the unit's flags: {other:?}"),
    }
}
