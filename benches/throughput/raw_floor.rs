//! The raw TCP floor, served by this bench binary re-executed with
//! [`RAW_SERVER_ENV`] set: a thread per connection (the same 128 KiB stack as
//! wsauth), `TCP_NODELAY`, no framing, every byte read written back.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

/// Set in the environment of the re-executed bench binary that serves raw TCP.
pub const RAW_SERVER_ENV: &str = "WSAUTH_BENCH_RAW_SERVER";
/// Stack of each raw-server connection thread: the same as wsauth's.
const RAW_STACK_BYTES: usize = 128 * 1024;
/// The raw server's receive buffer: one 16 KiB message in one read.
const RAW_BUFFER_BYTES: usize = 16 * 1024;

/// Serves the floor until killed; prints its address the way wsauth does.
pub fn raw_server_main() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the raw server");
    println!(
        "raw echo listening on http://{}/",
        listener.local_addr().expect("its address")
    );
    let _ = std::io::stdout().flush();
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let spawned = thread::Builder::new()
            .stack_size(RAW_STACK_BYTES)
            .spawn(move || raw_echo(stream));
        if spawned.is_err() {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Writes back every byte read until the peer closes.
fn raw_echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Received straight into uninitialised heap memory: an idle connection
    // costs only the pages actually written, the least such a server can cost.
    let mut buf: Vec<u8> = Vec::with_capacity(RAW_BUFFER_BYTES);
    loop {
        // SAFETY: recv writes at most the buffer's capacity.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                RAW_BUFFER_BYTES,
                0,
            )
        };
        let Ok(n @ 1..) = usize::try_from(n) else {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        };
        // SAFETY: recv initialised the first n bytes.
        unsafe { buf.set_len(n) };
        if stream.write_all(&buf).is_err() {
            return;
        }
        buf.clear();
    }
}
