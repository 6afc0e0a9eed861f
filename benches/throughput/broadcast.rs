//! Server push: one message to many idle sessions. The server runs in this
//! process (the library), since the push is a library call; its cost is the
//! CPU time of the one thread that broadcasts, which under wsauth's design
//! writes every frame itself and wakes no session thread.

use crate::plan::Plan;
use crate::servers::TOKEN;
use crate::table::{Row, Unit, median};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};
use wsauth::{Config, Echo, Grant, Server, TokenStore};

/// Client threads reading the broadcasts (each owns a share of the sessions).
const READERS: usize = 8;

/// What broadcasting to `sessions` idle sessions cost (medians over rounds).
pub struct Broadcast {
    sessions: usize,
    /// From the call until the last client has read the message, in ns.
    delivery_ns: f64,
    /// CPU time of the broadcasting thread per delivered message, in ns.
    cpu_per_message_ns: f64,
}

/// Opens the sessions, then broadcasts a 32-byte text `plan.rounds` times
/// (at least 5) and waits each time until every client has it.
pub fn broadcast_test(plan: &Plan) -> Broadcast {
    let sessions = if plan.quick { 200 } else { 1000 };
    let mut config = Config::default();
    config.max_connections = sessions + 64;
    config.idle_timeout = None;
    let tokens = TokenStore::new(vec![Grant {
        user: "alice".into(),
        token: TOKEN.into(),
        expires: None,
    }]);
    let quiet = Echo::each_session("", Echo::PREFIX);
    let server = Server::start_with_handler("127.0.0.1:0", config, tokens, quiet)
        .expect("in-process server");
    let clients = open_sessions(&server, sessions);
    let hub = server.sessions();
    let rounds = plan.rounds.max(5);
    let start = Arc::new(Barrier::new(READERS + 1));
    let done = Arc::new(Barrier::new(READERS + 1));
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut share| {
            let (start, done) = (start.clone(), done.clone());
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    start.wait();
                    for ws in &mut share {
                        match ws.read() {
                            Ok(Message::Text(t)) if t.len() == 32 => {}
                            other => panic!("expected the broadcast, got {other:?}"),
                        }
                    }
                    done.wait();
                }
            })
        })
        .collect();
    let (mut delivery, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        start.wait();
        let (began, cpu_before) = (Instant::now(), thread_cpu_ns());
        let delivered = hub.broadcast("b".repeat(32));
        let spent = thread_cpu_ns() - cpu_before;
        done.wait();
        delivery.push(began.elapsed().as_nanos() as f64);
        assert_eq!(delivered, sessions, "every session took the broadcast");
        cpu.push(spent as f64 / delivered as f64);
    }
    for reader in readers {
        reader.join().expect("every client read every broadcast");
    }
    server.stop();
    Broadcast {
        sessions,
        delivery_ns: median(delivery),
        cpu_per_message_ns: median(cpu),
    }
}

/// `count` authenticated sessions, split among the reader threads.
fn open_sessions(server: &Server, count: usize) -> Vec<Vec<WebSocket<TcpStream>>> {
    let addr = server.local_addr();
    let mut shares: Vec<Vec<_>> = (0..READERS).map(|_| Vec::new()).collect();
    for n in 0..count {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/ws"))
                .expect("request");
        request.headers_mut().insert(
            "Authorization",
            format!("Bearer {TOKEN}").parse().expect("header"),
        );
        let (ws, _) = tungstenite::client(request, stream).expect("upgrade");
        shares[n % READERS].push(ws);
    }
    let hub = server.sessions();
    let deadline = Instant::now() + Duration::from_secs(30);
    while hub.list().len() < count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    shares
}

/// CPU time of the calling thread.
fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The broadcast rows: delivery time, and CPU per delivered message beside
/// the echo's CPU per round trip (`echo_cpu_ns`, when the echo group ran).
pub fn broadcast_rows(b: &Broadcast, echo_cpu_ns: Option<f64>) -> Vec<Row> {
    let n = b.sessions;
    // The second column holds the echo's round trip, for scale.
    let cpu = Row::new(
        format!(
            "broadcast to {n} idle: server CPU per delivered message (2nd column: wsauth echo x16 round trip)"
        ),
        Unit::Micros,
        b.cpu_per_message_ns,
        echo_cpu_ns,
    );
    vec![
        Row::new(
            format!("broadcast to {n} idle: delivered to all in"),
            Unit::Micros,
            b.delivery_ns,
            None,
        ),
        cpu,
    ]
}
