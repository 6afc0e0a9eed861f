//! The systemd unit in `deploy/` passes `systemd-analyze verify`, with its
//! `ExecStart` pointing at the binary just built (the one thing changed).
//! The flags it uses are checked by the binary's unit tests
//! (`src/cli/tests.rs`).
//!
//! Where `systemd-analyze` is missing this prints `SKIPPED` and passes,
//! unless `WSAUTH_PROXY_TESTS=required` (the deploy files' checks; `.ci/run`
//! sets it and installs `systemd` when missing).

use std::process::Command;

const UNIT: &str = include_str!("../deploy/systemd/wsauth.service");

#[test]
fn the_systemd_unit_verifies_with_the_built_binary() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        let required = std::env::var("WSAUTH_PROXY_TESTS").is_ok_and(|v| v == "required");
        assert!(
            !required,
            "systemd-analyze is missing and WSAUTH_PROXY_TESTS=required"
        );
        eprintln!("SKIPPED: systemd-analyze is not installed; the unit was not verified");
        return;
    }
    let dir = std::env::temp_dir().join(format!("wsauth-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("wsauth.service");
    let unit_text = UNIT.replace("/usr/local/bin/wsauth", env!("CARGO_BIN_EXE_wsauth"));
    assert_ne!(
        unit_text, UNIT,
        "the unit's ExecStart names /usr/local/bin/wsauth"
    );
    std::fs::write(&unit, unit_text).unwrap();
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let complaints = String::from_utf8_lossy(&verified.stderr).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(verified.status.success(), "{complaints}");
    assert!(
        !complaints.contains("wsauth.service"),
        "systemd-analyze complains about the unit:\n{complaints}"
    );
}
