//! Unit tests of the parent module.

use super::*;

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::from([10, 0, 0, last]))
}

#[test]
fn the_cap_is_per_ip_and_freed_on_removal() {
    let pending = Pending::new(2);
    let a = pending.add(ip(1), None).expect("under the cap");
    pending.add(ip(1), None).expect("under the cap");
    assert_eq!(pending.add(ip(1), None), Err(Refused::OverCap));
    pending.add(ip(2), None).expect("under the cap");
    pending
        .add(None, None)
        .expect("an uncounted connection is always taken");
    pending.remove(a);
    pending.add(ip(1), None).expect("under the cap");
}

#[test]
fn an_idle_connection_makes_room_before_one_whose_request_is_in() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    let accept = |send: &[u8]| {
        let mut client = TcpStream::connect(addr).expect("connects");
        client.write_all(send).expect("sent");
        let (server_side, _) = listener.accept().expect("accepted");
        (client, Arc::new(server_side))
    };
    let (_sent, sent) = accept(b"GET / HTTP/1.1\r\n\r\n");
    let (_answered, answered) = accept(b"");
    let (mut idle_client, idle) = accept(b"");
    let pending = Pending::new(0);
    let first = pending.add(None, Some(sent)).expect("no cap");
    let second = pending.add(None, Some(answered)).expect("no cap");
    pending.answering(second);
    pending.add(None, Some(idle)).expect("no cap");
    let newcomer = pending.add(None, None).expect("no cap");
    // Wait for the request's bytes to be readable on the server side.
    assert!(
        (0..500).any(|_| {
            let table = pending.table();
            let waiting = table.entries[&first]
                .socket
                .as_deref()
                .is_some_and(has_unread_bytes);
            drop(table);
            waiting || {
                std::thread::sleep(Duration::from_millis(10));
                false
            }
        }),
        "the request never arrived"
    );
    assert!(pending.close_oldest(newcomer));
    // The idle one was closed; the two others are still pending.
    let mut byte = [0u8; 1];
    idle_client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    assert_eq!(
        std::io::Read::read(&mut idle_client, &mut byte).ok(),
        Some(0)
    );
    assert!(pending.table().entries.contains_key(&first));
    assert!(pending.table().entries.contains_key(&second));
    // With no idle one left, the oldest goes, whatever it is doing.
    assert!(pending.close_oldest(newcomer));
    assert!(!pending.table().entries.contains_key(&first));
}

#[test]
fn the_client_holding_the_most_makes_room_first() {
    // The cap off: a lone client is still told apart from a holder.
    let pending = Pending::new(0);
    let lone = pending.add(ip(3), None).expect("no cap");
    let held: Vec<Ticket> = (0..3)
        .map(|_| pending.add(ip(2), None).expect("no cap"))
        .collect();
    let newcomer = pending.add(ip(4), None).expect("no cap");
    for ticket in &held[..2] {
        assert!(pending.close_oldest(newcomer));
        assert!(!pending.table().entries.contains_key(ticket));
        assert!(pending.table().entries.contains_key(&lone));
    }
    // One each: the oldest goes.
    assert!(pending.close_oldest(newcomer));
    assert!(!pending.table().entries.contains_key(&lone));
    assert!(pending.table().entries.contains_key(&held[2]));
}

#[test]
fn zero_disables_the_cap() {
    let pending = Pending::new(0);
    for _ in 0..100 {
        pending.add(ip(1), None).expect("under the cap");
    }
}

#[test]
fn the_oldest_other_than_the_new_one_makes_room() {
    let pending = Pending::new(1);
    let first = pending.add(ip(1), None).expect("under the cap");
    let second = pending.add(ip(2), None).expect("under the cap");
    assert!(pending.close_oldest(second));
    // The first is gone, its IP's count with it.
    assert_eq!(
        pending.count(first, IpAddr::from([10, 0, 0, 9])),
        Err(Refused::Gone)
    );
    pending.add(ip(1), None).expect("under the cap");
    assert!(pending.close_oldest(second));
    assert!(!pending.close_oldest(second));
}

#[test]
fn a_proxy_header_source_is_counted_later() {
    let pending = Pending::new(1);
    let a = pending
        .add(None, None)
        .expect("an uncounted connection is always taken");
    let b = pending
        .add(None, None)
        .expect("an uncounted connection is always taken");
    let source = IpAddr::from([192, 0, 2, 1]);
    pending.count(a, source).expect("under the cap");
    assert_eq!(pending.count(b, source), Err(Refused::OverCap));
    pending.remove(a);
    pending.count(b, source).expect("under the cap");
}

#[test]
fn an_ipv6_64_shares_one_cap() {
    let pending = Pending::new(1);
    let first: IpAddr = "2001:db8:1:2::1".parse().expect("valid in this test");
    let same_network: IpAddr = "2001:db8:1:2::2".parse().expect("valid in this test");
    let other_network: IpAddr = "2001:db8:1:3::1".parse().expect("valid in this test");
    let ticket = pending.add(Some(first), None).expect("under the cap");
    assert_eq!(pending.add(Some(same_network), None), Err(Refused::OverCap));
    pending
        .add(Some(other_network), None)
        .expect("under the cap");
    pending.remove(ticket);
    pending
        .add(Some(same_network), None)
        .expect("under the cap");
}

#[test]
fn an_ipv4_mapped_address_shares_its_ipv4_cap() {
    let pending = Pending::new(1);
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("valid in this test");
    pending.add(Some(mapped), None).expect("under the cap");
    assert_eq!(pending.add(ip(1), None), Err(Refused::OverCap));
}
