//! Server push: handles, listing, broadcast, the bounds on a sender, and
//! frames that never interleave.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsauth::{Config, SendError, Server, Sessions};

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Opens a session and waits until the server lists it.
fn open(server: &Server, token: &str, listed: usize) -> Client {
    let (ws, _) = connect(
        server.local_addr(),
        "/ws",
        &[("Authorization", &bearer(token))],
    )
    .expect("the session opens");
    let sessions = server.sessions();
    assert!(eventually(PATIENCE, || sessions.list().len() >= listed));
    ws
}

#[test]
fn live_sessions_are_listed_with_user_and_peer() {
    let server = start_quiet(Config::default());
    let alice = open(&server, ALICE, 1);
    let _bob = open(&server, BOB, 2);
    let mut listed: Vec<(String, SocketAddr)> = server
        .sessions()
        .list()
        .into_iter()
        .map(|s| (s.user, s.peer))
        .collect();
    listed.sort();
    assert_eq!(
        listed[0],
        ("alice".into(), alice.get_ref().local_addr().unwrap())
    );
    assert_eq!(listed[1].0, "bob");
    drop(alice);
    let sessions = server.sessions();
    assert!(eventually(PATIENCE, || sessions.list().len() == 1));
}

#[test]
fn broadcast_reaches_every_session_and_send_to_user_only_that_users() {
    let server = start_quiet(Config::default());
    let mut alice1 = open(&server, ALICE, 1);
    let mut alice2 = open(&server, ALICE, 2);
    let mut bob = open(&server, BOB, 3);
    let sessions: Sessions = server.sessions();
    assert_eq!(sessions.send_to_user("alice", "for alice"), 2);
    assert_eq!(sessions.broadcast(vec![1u8, 2, 3]), 3);
    for ws in [&mut alice1, &mut alice2] {
        assert_eq!(next_text(ws), "for alice");
    }
    for ws in [&mut alice1, &mut alice2, &mut bob] {
        assert_eq!(ws.read().unwrap(), Message::binary(vec![1u8, 2, 3]));
    }
}

#[test]
fn a_first_message_session_is_not_listed_before_its_token() {
    let mut config = Config::default();
    config.first_message_auth = true;
    let server = start_quiet(config);
    let (mut ws, _) = connect(server.local_addr(), "/ws", &[]).unwrap();
    assert!(eventually(PATIENCE, || server.live_sessions() == 1));
    assert_eq!(server.sessions().broadcast("too early"), 0);
    ws.send(Message::text(ALICE)).unwrap();
    let sessions = server.sessions();
    assert!(eventually(PATIENCE, || sessions.list().len() == 1));
    assert_eq!(sessions.broadcast("now"), 1);
    assert_eq!(next_text(&mut ws), "now");
}

#[test]
fn a_sender_to_a_stalled_session_fails_within_the_write_timeout_and_the_wait_is_bounded() {
    let write_timeout = Duration::from_secs(3);
    let mut config = Config::default();
    config.write_timeout = write_timeout;
    let server = start_quiet(config);
    // A client that never reads: its buffers fill, and a writer stays stuck.
    let ws = open(&server, ALICE, 1);
    let handle = server.sessions().list().remove(0).handle;
    let big = vec![0u8; 64 << 20];
    let stuck = {
        let handle = handle.clone();
        std::thread::spawn(move || handle.send(big))
    };
    // Wait until the big frame is on its way (its bytes fill the client's
    // receive buffer), so that the small sends below queue behind it.
    assert!(eventually(PATIENCE, || unread_bytes(ws.get_ref()) >= 64 << 10));
    let senders: Vec<_> = (0..40)
        .map(|_| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                let began = Instant::now();
                (handle.send("small"), began.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    // Its own deadline, or the background thread cutting the session whose
    // bytes have not moved for as long, whichever runs first on a busy box.
    let stuck = stuck.join().unwrap();
    assert!(
        matches!(stuck, Err(SendError::TimedOut | SendError::Closed)),
        "{stuck:?}"
    );
    // No sender waited longer than the write timeout (plus scheduling slack).
    for (result, waited) in &results {
        assert!(result.is_err(), "{result:?}");
        assert!(
            *waited < write_timeout + Duration::from_secs(3),
            "{waited:?}"
        );
    }
    // At most 16 may wait (and so time out); the others are refused at once
    // as full, or find the session closed once the stuck writer cut it off.
    let count = |e: SendError| results.iter().filter(|(r, _)| *r == Err(e)).count();
    assert!(
        count(SendError::TimedOut) <= wsauth_waiting_bound(),
        "{results:?}"
    );
    assert!(count(SendError::Full) >= 1, "{results:?}");
    // The half-written frame ended the session.
    assert!(eventually(PATIENCE, || !handle.is_open()));
    assert_eq!(handle.send("after"), Err(SendError::Closed));
    drop(ws);
}

/// Bytes the peer sent that wait unread in `tcp`'s receive buffer.
fn unread_bytes(tcp: &std::net::TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut unread: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int, into `unread`, for an open socket.
    let done = unsafe { libc::ioctl(tcp.as_raw_fd(), libc::FIONREAD, &mut unread) };
    if done < 0 { 0 } else { unread as usize }
}

/// Most senders that wait for one session at once (a bounded queue).
fn wsauth_waiting_bound() -> usize {
    16
}

#[test]
fn a_handle_outliving_its_session_holds_no_descriptor() {
    let server = start_quiet(Config::default());
    let mut ws = open(&server, ALICE, 1);
    let handle = server.sessions().list().remove(0).handle;
    let client_port = ws.get_ref().local_addr().unwrap().port();
    let inode = server_socket_inode(server.local_addr().port(), client_port)
        .expect("the server's socket for this session");
    assert!(open_descriptors().contains(&inode));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    assert!(eventually(PATIENCE, || server.live_sessions() == 0));
    // The handle lives on, but the session's descriptor is closed.
    assert!(eventually(PATIENCE, || !open_descriptors().contains(&inode)));
    assert!(!handle.is_open());
    assert_eq!(handle.send("x"), Err(SendError::Closed));
}

/// The inode of the socket from `local_port` to `remote_port` on 127.0.0.1.
fn server_socket_inode(local_port: u16, remote_port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{local_port:04X}");
    let remote = format!("0100007F:{remote_port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
            .then(|| format!("socket:[{}]", fields[9]))
    })
}

/// What this process's descriptors point at.
fn open_descriptors() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// 1,000 sessions echo while a thread broadcasts to all of them: every
/// client checks every frame (tungstenite's client refuses a garbled one),
/// that nothing is lost and that each sender's order is kept.
#[test]
fn broadcasts_and_echoes_never_interleave_across_a_thousand_sessions() {
    raise_open_files_limit();
    const SESSIONS: usize = 1000;
    const CLIENT_THREADS: usize = 8;
    const ROUNDS: usize = 5;
    const BROADCASTS: usize = 20;
    let mut config = Config::default();
    config.max_connections = 4096;
    let server = start_quiet(config);
    let addr = server.local_addr();
    let auth = bearer(ALICE);
    let clients: Vec<Vec<Client>> = (0..CLIENT_THREADS)
        .map(|_| {
            (0..SESSIONS / CLIENT_THREADS)
                .map(|_| {
                    connect(addr, "/ws", &[("Authorization", &auth)])
                        .expect("opens")
                        .0
                })
                .collect()
        })
        .collect();
    let sessions = server.sessions();
    assert!(eventually(PATIENCE, || sessions.list().len() == SESSIONS));
    let broadcaster = std::thread::spawn(move || {
        for n in 0..BROADCASTS {
            // Sizes from a few bytes to several KiB, so frames span writes.
            let text = format!("b{n}:{}", "x".repeat(n * 397));
            assert_eq!(sessions.broadcast(text), SESSIONS);
        }
    });
    let workers: Vec<_> = clients
        .into_iter()
        .map(|conns| std::thread::spawn(move || echo_and_collect(conns, ROUNDS, BROADCASTS)))
        .collect();
    broadcaster
        .join()
        .expect("every broadcast reached every session");
    for worker in workers {
        worker
            .join()
            .expect("every frame arrived whole and in order");
    }
}

/// Echoes `rounds` messages on each connection in turn, then reads the
/// rest; checks echoes and broadcasts arrive whole and each in order.
fn echo_and_collect(mut conns: Vec<Client>, rounds: usize, broadcasts: usize) {
    let mut seen = vec![0usize; conns.len()];
    for round in 0..rounds {
        for (i, ws) in conns.iter_mut().enumerate() {
            let text = format!("e{round}:{}", "y".repeat(1000 + round.to_string().len()));
            ws.send(Message::text(text)).unwrap();
            loop {
                if let Some(n) = check_frame(&next_text(ws), &mut seen[i]) {
                    assert_eq!(n, round, "echoes in order");
                    break;
                }
            }
        }
    }
    for (i, ws) in conns.iter_mut().enumerate() {
        while seen[i] < broadcasts {
            let message = next_text(ws);
            assert!(
                check_frame(&message, &mut seen[i]).is_none(),
                "no echo left over"
            );
        }
    }
}

/// Checks one message: a broadcast must be the next one expected (counted in
/// `seen`), and whole; an echo must be whole, and its round is returned.
fn check_frame(text: &str, seen: &mut usize) -> Option<usize> {
    if let Some(rest) = text.strip_prefix('b') {
        let (n, pad) = rest.split_once(':').expect("a broadcast");
        let n: usize = n.parse().expect("its number");
        assert_eq!(n, *seen, "broadcasts in order");
        assert_eq!(pad.len(), n * 397, "broadcast {n} whole");
        *seen += 1;
        return None;
    }
    let (n, pad) = text[1..].split_once(':').expect("an echo");
    assert_eq!(pad.len(), 1000 + n.len(), "echo whole");
    Some(n.parse().expect("its number"))
}

/// Each session costs this process a descriptor for its client and the
/// server one: more than the usual soft limit of 1,024.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
