//! Two wsauth binaries behind nginx or HAProxy, as `tests/deploy.rs` and
//! `tests/deploy_rolling.rs` run them, and an upgrade through the proxy.

use super::process::{TempFile, Wsauth};
use super::proxies::{Proxy, ProxyKind};
use super::{ALICE, BOB, connect_from_ip, next_text};
use std::net::{Ipv4Addr, SocketAddr};

pub const CLIENT_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
pub const CLIENT_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// One wsauth binary on `listen`, reading `tokens`, with `extra` flags.
pub fn instance(listen: &str, tokens: &TempFile, extra: &[&str]) -> (Wsauth, SocketAddr) {
    let mut args = vec![
        "--listen",
        listen,
        "--tokens-file",
        tokens.path(),
        "--trusted-proxy",
        "127.0.0.1",
        "--max-auth-failures",
        "2",
    ];
    args.extend_from_slice(extra);
    let mut wsauth = Wsauth::spawn(&args, &[]);
    let addr = wsauth.listen_addr();
    (wsauth, addr)
}

/// Two instances behind one proxy.
pub struct Deployment {
    pub proxy: Proxy,
    pub instances: Vec<(Wsauth, SocketAddr)>,
    pub tokens: TempFile,
}

/// Two instances reading one tokens file, and `kind` in front of them.
pub fn deploy(kind: ProxyKind, test: &str, extra: &[&str]) -> Option<Deployment> {
    let tokens = TempFile::new(
        &format!("deploy-{test}-{kind:?}"),
        format!("alice:{ALICE}\nbob:{BOB}\n").as_bytes(),
    );
    let instances = vec![
        instance("127.0.0.1:0", &tokens, extra),
        instance("127.0.0.1:0", &tokens, extra),
    ];
    let upstreams = [instances[0].1, instances[1].1];
    let proxy = Proxy::start(kind, upstreams, &format!("{test} ({kind:?})"))?;
    Some(Deployment {
        proxy,
        instances,
        tokens,
    })
}

impl Deployment {
    /// Stops both instances; returns their stderr, joined.
    pub fn stop(self) -> String {
        self.stop_each().concat()
    }

    /// Stops both instances; returns the stderr of each.
    pub fn stop_each(self) -> Vec<String> {
        self.instances
            .into_iter()
            .map(|(wsauth, _)| wsauth.stop().1)
            .collect()
    }
}

/// An upgrade from `client` through the proxy: the greeting, or the status.
pub fn attempt(
    client: Ipv4Addr,
    proxy: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<String, u16> {
    match connect_from_ip(client, proxy, target, headers) {
        Ok((mut ws, _)) => {
            let greeting = next_text(&mut ws);
            let _ = ws.close(None);
            while ws.read().is_ok() {}
            Ok(greeting)
        }
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("upgrade through the proxy failed: {e}"),
    }
}

/// A session through the proxy, from client B.
pub fn held_session(proxy: &Proxy) -> super::Client {
    let bearer = format!("Bearer {ALICE}");
    let (mut ws, _) = connect_from_ip(CLIENT_B, proxy.addr(), "/ws", &[("Authorization", &bearer)])
        .unwrap_or_else(|e| panic!("a held session: {e}\n{}", proxy.log()));
    assert_eq!(next_text(&mut ws), "Hello alice");
    ws
}
