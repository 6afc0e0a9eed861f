use super::*;
use std::net::TcpListener;
use std::time::Duration;

#[test]
fn a_plain_write_ends_at_its_deadline_too() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let started = Instant::now();
    let e = write_all_before(
        &server,
        &vec![7u8; 32 << 20],
        Instant::now() + Duration::from_millis(300),
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(3));
}
