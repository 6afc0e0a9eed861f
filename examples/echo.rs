//! The smallest wsauth server: the built-in echo behind one token.
//!
//!     cargo run --example echo
//!
//! Then connect with the header `Authorization: Bearer s3cret`, for
//! instance with Python's `websockets`:
//!
//!     from websockets.sync.client import connect
//!     ws = connect("ws://127.0.0.1:8000/ws",
//!                  additional_headers={"Authorization": "Bearer s3cret"})
//!     print(ws.recv())   # Hello alice
//!     ws.send("hi"); print(ws.recv())   # Message text was: hi

use wsauth::{Config, Grant, Server, TokenStore};

fn main() -> Result<(), wsauth::Error> {
    let tokens = TokenStore::new(vec![Grant {
        user: "alice".into(),
        token: "s3cret".into(),
        expires: None,
    }]);
    let server = Server::start("127.0.0.1:8000", Config::default(), tokens)?;
    println!("echo on ws://{}/ws; Ctrl-C stops it", server.local_addr());
    // The server runs on its own threads; this one has nothing left to do.
    loop {
        std::thread::park();
    }
}
