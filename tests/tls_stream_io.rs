//! The TLS layer on its own: a stream read by its own thread while others
//! write, timeouts, KeyUpdate, close_notify, and tungstenite on top of it.
#![cfg(feature = "tls")]

mod common;

use common::tls::client_config;
use common::tls_stream::*;
use common::{PATIENCE, is_timeout};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use wsauth::tls::TlsStream;

#[test]
fn a_read_timeout_is_a_timeout_and_the_stream_stays_usable() {
    let (mut client, server, _) = connected();
    server
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let e = server.read(&mut [0u8; 16]).unwrap_err();
    assert!(is_timeout(&e), "got {e:?}");
    // Half a record, a timeout in the middle of it, then the rest.
    client.conn.writer().write_all(b"split record").unwrap();
    let mut record = Vec::new();
    client.conn.write_tls(&mut record).unwrap();
    let half = record.len() / 2;
    client.sock.write_all(&record[..half]).unwrap();
    let e = server.read(&mut [0u8; 16]).unwrap_err();
    assert!(is_timeout(&e), "got {e:?}");
    client.sock.write_all(&record[half..]).unwrap();
    assert_eq!(read_exactly(&server, 12), b"split record");
    server.write_all(b"still here", soon()).unwrap();
    let mut buf = [0u8; 10];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
}

#[test]
fn a_record_trickled_a_byte_at_a_time_cannot_stretch_a_read_past_its_timeout() {
    let (mut client, server, _) = connected();
    let timeout = Duration::from_millis(300);
    server.tcp().set_read_timeout(Some(timeout)).unwrap();
    client.conn.writer().write_all(b"trickled").unwrap();
    let mut record = Vec::new();
    client.conn.write_tls(&mut record).unwrap();
    // One byte every 100 ms: each raw read succeeds, the record takes seconds.
    let mut sock = client.sock.try_clone().unwrap();
    let trickler = thread::spawn(move || {
        for byte in record {
            thread::sleep(Duration::from_millis(100));
            if sock.write_all(&[byte]).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let e = server.read(&mut [0u8; 16]).unwrap_err();
    let took = started.elapsed();
    assert!(is_timeout(&e), "got {e:?}");
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    // The socket keeps the timeout it had, and the record still arrives.
    assert_eq!(server.tcp().read_timeout().unwrap(), Some(timeout));
    trickler.join().unwrap();
    server.tcp().set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(read_exactly(&server, 8), b"trickled");
}

#[test]
fn a_forged_record_fails_the_read_and_the_peer_gets_an_alert() {
    let (mut client, server, _) = connected();
    client.sock.write_all(b"\x17\x03\x03\x00\x20").unwrap();
    client.sock.write_all(&[0x55; 32]).unwrap();
    let e = server.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    drop(server);
    let e = client.read(&mut [0u8; 16]).unwrap_err();
    assert!(e.to_string().contains("alert"), "{e}");
}

#[test]
fn a_200_kib_write_arrives_whole_from_one_call() {
    let (mut client, server, _) = connected();
    let big: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    let expected = big.clone();
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; expected.len()];
        client.read_exact(&mut got).unwrap();
        assert!(got == expected, "the bytes differ");
    });
    server.write_all(&big, soon()).unwrap();
    reader.join().unwrap();
}

/// One writer's message: `<writer>:<number>:` then a body of that writer's
/// letter, its length varying, then a newline.
fn message(writer: usize, number: usize) -> Vec<u8> {
    let mut out = format!("{writer}:{number}:").into_bytes();
    let len = (number * 997 + writer * 131) % 20_000;
    out.extend(std::iter::repeat_n(b'a' + writer as u8, len));
    out.push(b'\n');
    out
}

#[test]
fn writers_on_many_threads_never_interleave_while_the_owner_reads() {
    const WRITERS: usize = 4;
    const MESSAGES: usize = 60;
    let (mut client, server, _) = connected();
    let server = Arc::new(server);
    let owner = {
        let server = Arc::clone(&server);
        thread::spawn(move || read_exactly(&server, 3))
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                for m in 0..MESSAGES {
                    server.write_all(&message(w, m), soon()).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0usize; WRITERS];
    let mut lines = io::BufReader::new(&mut client);
    for _ in 0..WRITERS * MESSAGES {
        let mut line = Vec::new();
        io::BufRead::read_until(&mut lines, b'\n', &mut line).unwrap();
        let text = String::from_utf8(line).unwrap();
        let mut parts = text.splitn(3, ':');
        let w: usize = parts.next().unwrap().parse().unwrap();
        let m: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(m, next[w], "writer {w}'s messages out of order");
        assert_eq!(text.as_bytes(), message(w, m), "message {w}:{m} damaged");
        next[w] += 1;
    }
    for writer in writers {
        writer.join().unwrap();
    }
    drop(lines);
    client.write_all(b"bye").unwrap();
    assert_eq!(owner.join().unwrap(), b"bye");
}

#[test]
fn a_client_key_update_is_answered_and_pushes_follow_under_the_new_keys() {
    let (mut client, server, _) = connected();
    let server = Arc::new(server);
    let owner = {
        let server = Arc::clone(&server);
        thread::spawn(move || {
            let first = read_exactly(&server, 6);
            let second = read_exactly(&server, 5);
            (first, second)
        })
    };
    client.conn.refresh_traffic_keys().unwrap();
    client.write_all(b"update").unwrap();
    client.flush().unwrap();
    for i in 0..10 {
        let server = Arc::clone(&server);
        thread::spawn(move || server.write_all(format!("push{i}").as_bytes(), soon()))
            .join()
            .unwrap()
            .unwrap();
    }
    let mut buf = [0u8; 50];
    client.read_exact(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("push0push1"));
    client.conn.refresh_traffic_keys().unwrap();
    client.write_all(b"again").unwrap();
    assert_eq!(
        owner.join().unwrap(),
        (b"update".to_vec(), b"again".to_vec())
    );
    server.write_all(b"last", soon()).unwrap();
    let mut last = [0u8; 4];
    client.read_exact(&mut last).unwrap();
    assert_eq!(&last, b"last");
}

#[test]
fn close_notify_from_the_client_ends_reading() {
    let (mut client, server, _) = connected();
    client.write_all(b"end").unwrap();
    client.conn.send_close_notify();
    client.flush().unwrap();
    assert_eq!(read_exactly(&server, 3), b"end");
    assert_eq!(server.read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn a_tcp_close_without_close_notify_ends_reading_too() {
    let (client, server, _) = connected();
    client.sock.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(server.read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn a_read_shutdown_from_another_thread_wakes_the_reader() {
    let (_client, server, _) = connected();
    let server = Arc::new(server);
    let owner = {
        let server = Arc::clone(&server);
        thread::spawn(move || server.read(&mut [0u8; 8]))
    };
    thread::sleep(Duration::from_millis(100));
    server.tcp().shutdown(std::net::Shutdown::Read).unwrap();
    assert_eq!(owner.join().unwrap().unwrap(), 0);
}

#[test]
fn the_server_close_notify_reaches_the_client() {
    let (mut client, server, _) = connected();
    server.send_close_notify(soon()).unwrap();
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn a_write_to_a_peer_that_never_reads_ends_at_its_deadline() {
    let (_client, server, _) = connected();
    let big = vec![7u8; 32 << 20];
    let started = Instant::now();
    let e = server
        .write_all(&big, Instant::now() + Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_push_returns_at_its_deadline_while_the_reader_flushes_to_a_stalled_peer() {
    let (mut client, server, _) = connected();
    // The peer stops reading: a write fills the socket and leaves records
    // behind in rustls.
    let e = server
        .write_all(
            &vec![7u8; 32 << 20],
            Instant::now() + Duration::from_millis(300),
        )
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    // The reader's own flush of those records may take the write timeout.
    let write_timeout = Duration::from_secs(4);
    server.tcp().set_write_timeout(Some(write_timeout)).unwrap();
    let server = Arc::new(server);
    let owner = {
        let server = Arc::clone(&server);
        thread::spawn(move || server.read(&mut [0u8; 8]))
    };
    client.write_all(b"a record").unwrap();
    client.flush().unwrap();
    // Let the reader take the state and start its flush (it cannot be seen).
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let pushed = server.write_all(b"push", Instant::now() + Duration::from_millis(300));
    let took = started.elapsed();
    assert_eq!(pushed.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert!(took < Duration::from_secs(2), "the push took {took:?}");
    drop(client);
    let _ = owner.join().unwrap();
}

/// What the session layer will hand tungstenite: reads from the owner,
/// writes that end by a deadline.
struct Wss(Arc<TlsStream>);

impl Read for Wss {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Wss {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf, soon())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn tungstenite_upgrades_and_echoes_over_tls() {
    let (settings, _pair, der) = settings();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = settings.current();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = Arc::new(TlsStream::accept(tcp, config, soon()).unwrap());
        let mut ws = tungstenite::accept(Wss(tls)).unwrap();
        let message = ws.read().unwrap();
        ws.send(message).unwrap();
        let _ = ws.read();
    });
    let name = ServerName::try_from("localhost").unwrap();
    let conn =
        ClientConnection::new(client_config(&[&rustls::version::TLS13], &der), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut ws, response) =
        tungstenite::client("wss://localhost/ws", StreamOwned::new(conn, tcp)).unwrap();
    assert_eq!(response.status(), 101);
    ws.send(tungstenite::Message::text("over wss")).unwrap();
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text("over wss"));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    server.join().unwrap();
}
