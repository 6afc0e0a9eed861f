//! A build without an optional feature refuses that feature's flags, with one
//! line naming the feature.

mod common;

/// Asserts that `args` exit 2 with exactly one stderr line saying that `flag`
/// needs `feature`.
#[allow(dead_code)]
fn assert_needs_feature(args: &[&str], flag: &str, feature: &str) {
    let run = common::process::finish(args);
    assert_eq!(run.code, Some(2), "{args:?}: {:?}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {:?}", run.stderr);
    let wanted = format!("{flag} needs a build with the feature {feature}");
    assert!(run.stderr.contains(&wanted), "{args:?}: {:?}", run.stderr);
}

#[cfg(not(feature = "jwt"))]
#[test]
fn jwt_flags_need_a_build_with_the_feature_jwt() {
    for flag in [
        "--jwt-secret-file",
        "--jwt-public-key",
        "--jwt-jwks",
        "--jwt-issuer",
        "--jwt-audience",
        "--jwt-user-claim",
        "--jwt-leeway",
    ] {
        assert_needs_feature(&["--listen", "127.0.0.1:0", flag, "x"], flag, "jwt");
        assert_needs_feature(&[flag], flag, "jwt");
        assert_needs_feature(&[&format!("{flag}=x")], flag, "jwt");
    }
}

/// The exact line, without the `--help` hint (which cannot help).
#[cfg(not(feature = "tls"))]
#[test]
fn tls_flags_need_a_build_with_the_feature_tls() {
    for flag in ["--tls-cert", "--tls-key"] {
        let run = common::process::finish(&["--listen", "127.0.0.1:0", flag, "x.pem"]);
        assert_eq!(run.code, Some(2), "{flag}: {:?}", run.stderr);
        assert_eq!(
            run.stderr,
            format!("wsauth: {flag} needs a build with the feature tls\n")
        );
        assert_needs_feature(&[&format!("{flag}=x.pem")], flag, "tls");
    }
}

#[cfg(not(feature = "redis"))]
#[test]
fn redis_flags_need_a_build_with_the_feature_redis() {
    for flag in ["--redis", "--redis-prefix"] {
        let run = common::process::finish(&["--listen", "127.0.0.1:0", flag, "redis://:pw@h"]);
        assert_eq!(
            run.stderr,
            format!("wsauth: {flag} needs a build with the feature redis\n")
        );
        assert_eq!(run.code, Some(2));
        assert_needs_feature(&[&format!("{flag}=redis://h")], flag, "redis");
    }
}

/// With the feature: `rediss://` needs `tls` too; a bad prefix is refused.
#[cfg(feature = "redis")]
#[test]
fn redis_flags_are_checked_before_the_start() {
    let cases: [(&[&str], &str); 4] = [
        (&["--redis", "http://:pw@h"], "--redis: not a Redis URL"),
        (&["--redis-prefix", "p"], "--redis-prefix needs --redis"),
        (
            &["--redis", "redis://h", "--redis-prefix", "a:b"],
            "--redis-prefix: a prefix",
        ),
        (
            &["--redis", "rediss://:pw@h"],
            if cfg!(feature = "tls") {
                ""
            } else {
                "rediss:// needs a build with the features redis and tls"
            },
        ),
    ];
    for (args, wanted) in cases {
        if wanted.is_empty() {
            continue;
        }
        let run = common::process::finish(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(wanted), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("pw"), "{args:?}: {}", run.stderr);
    }
}
