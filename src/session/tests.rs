//! The session's own helpers.

use super::*;

#[test]
fn any_expiry_maps_to_an_instant() {
    let now = Instant::now();
    assert!(instant_of(0) <= Instant::now());
    assert!(instant_of(u64::MAX) > now);
    assert!(instant_of(unix_now() + 10) > now + Duration::from_secs(8));
}
