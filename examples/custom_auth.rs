//! Your own token check: implement `Authenticator`, as a FastAPI route
//! supplies its own dependency with `Depends`.
//!
//!     cargo run --example custom_auth
//!
//! This one accepts tokens of the form `USER.SIGNATURE` where SIGNATURE is
//! a keyed hash of USER. (Illustration only: a real deployment uses a
//! proper MAC or JWTs, never `DefaultHasher`.)

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use wsauth::{Authenticator, Config, Identity, Server, auth::constant_time_eq};

struct SignedNames {
    key: u64,
}

impl SignedNames {
    fn sign(&self, user: &str) -> String {
        let mut hasher = DefaultHasher::new();
        (self.key, user).hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }
}

impl Authenticator for SignedNames {
    fn authenticate(&self, token: &str) -> Option<Identity> {
        let (user, signature) = token.split_once('.')?;
        let expected = self.sign(user);
        // Compare in constant time: timing must not reveal the signature.
        constant_time_eq(signature.as_bytes(), expected.as_bytes()).then(|| Identity {
            user: user.to_string(),
            // Unix seconds; the session closes with 1008 when this passes.
            expires: Some(wsauth::auth::unix_now() + 3600),
        })
    }
}

fn main() -> Result<(), wsauth::Error> {
    let auth = SignedNames { key: 42 };
    let token = format!("bob.{}", auth.sign("bob"));
    let server = Server::start("127.0.0.1:8000", Config::default(), auth)?;
    println!("wsauth listening on http://{}/", server.local_addr());
    println!("open http://{}/#token={token} in a browser", server.local_addr());
    loop {
        std::thread::park();
    }
}
