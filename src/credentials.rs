//! Finding the token in an upgrade request: the `Authorization` header, then a
//! `bearer.` subprotocol, then the `token` query parameter.

use crate::auth::is_valid_token;
use tungstenite::handshake::server::Request;

/// The prefix of an offered subprotocol that carries a token.
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "bearer.";

/// What the client presented as its token.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// No source held a token.
    Nothing,
    /// A well-formed token, not yet checked.
    Token(String),
    /// A value that does not decode to a valid token: an unknown token.
    Malformed,
}

/// The credentials of an upgrade request, and the subprotocol to select.
#[derive(Debug)]
pub struct Credentials {
    /// The token, from the first source that had one.
    pub token: Presented,
    /// The first offered subprotocol that is not a token; selected in the 101.
    pub subprotocol: Option<String>,
    /// Subprotocols were offered, but all of them carry tokens.
    pub only_token_subprotocols: bool,
}

/// Extracts the token and the subprotocol choice from an upgrade request.
pub fn extract_credentials(request: &Request) -> Credentials {
    let offered = offered_subprotocols(request);
    let subprotocol = offered
        .iter()
        .find(|p| !p.starts_with(TOKEN_SUBPROTOCOL_PREFIX))
        .cloned();
    let from_subprotocol = offered
        .iter()
        .find_map(|p| p.strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
        .map(checked);
    let token = [
        bearer_header(request),
        from_subprotocol.unwrap_or(Presented::Nothing),
        query_token(request.uri().query().unwrap_or_default()),
    ]
    .into_iter()
    .find(|p| *p != Presented::Nothing)
    .unwrap_or(Presented::Nothing);
    Credentials {
        token,
        only_token_subprotocols: !offered.is_empty() && subprotocol.is_none(),
        subprotocol,
    }
}

/// The comma-separated values of all `Sec-WebSocket-Protocol` lines, in order.
fn offered_subprotocols(request: &Request) -> Vec<String> {
    let mut offered = Vec::new();
    for line in request.headers().get_all("sec-websocket-protocol") {
        for protocol in String::from_utf8_lossy(line.as_bytes()).split(',') {
            let protocol = protocol.trim();
            if !protocol.is_empty() {
                offered.push(protocol.to_string());
            }
        }
    }
    offered
}

/// The first `Authorization: Bearer TOKEN` (scheme matched ignoring case).
fn bearer_header(request: &Request) -> Presented {
    let mut values = request.headers().get_all("authorization").iter();
    match values.find_map(|value| bearer_of(value.as_bytes())) {
        None => Presented::Nothing,
        Some(rest) => std::str::from_utf8(rest).map_or(Presented::Malformed, |t| checked(t.trim())),
    }
}

/// What follows the scheme of an `Authorization` value whose scheme is
/// `Bearer` (matched ignoring case); `None` for another scheme.
pub fn bearer_of(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(space) => value.split_at(space),
        None => (value, &b""[..]),
    };
    scheme.eq_ignore_ascii_case(b"bearer").then_some(rest)
}

/// The first `token` query parameter, percent-decoded (`+` stays `+`).
fn query_token(query: &str) -> Presented {
    let Some(raw) = query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        is_token_parameter(name).then_some(value)
    }) else {
        return Presented::Nothing;
    };
    match percent_decode(raw) {
        Some(token) => checked(&token),
        None if raw.is_empty() => Presented::Nothing,
        None => Presented::Malformed,
    }
}

/// Whether a query parameter name is `token`, once percent-decoded.
pub fn is_token_parameter(name: &str) -> bool {
    name == "token" || percent_decode(name).is_some_and(|n| n == "token")
}

/// Classifies a raw value: empty is no token, otherwise valid or malformed.
fn checked(value: &str) -> Presented {
    match value {
        "" => Presented::Nothing,
        v if is_valid_token(v) => Presented::Token(v.to_string()),
        _ => Presented::Malformed,
    }
}

/// Decodes `%XX` escapes; `None` for a broken escape or a result that is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("valid in this test")
    }

    fn token(target: &str, headers: &[(&str, &str)]) -> Presented {
        extract_credentials(&request(target, headers)).token
    }

    #[test]
    fn header_wins_over_subprotocol_and_query() {
        let t = token(
            "/ws?token=q",
            &[
                ("Authorization", "bearer h"),
                ("Sec-WebSocket-Protocol", "bearer.s"),
            ],
        );
        assert_eq!(t, Presented::Token("h".into()));
        assert_eq!(
            token(
                "/ws?token=q",
                &[("Sec-WebSocket-Protocol", "chat, bearer.s")]
            ),
            Presented::Token("s".into())
        );
        assert_eq!(
            token("/ws?a=1&token=q&token=r", &[]),
            Presented::Token("q".into())
        );
    }

    #[test]
    fn empty_values_fall_through_to_the_next_source() {
        assert_eq!(
            token("/ws?token=q", &[("Authorization", "Bearer ")]),
            Presented::Token("q".into())
        );
        assert_eq!(
            token("/ws?token=q", &[("Sec-WebSocket-Protocol", "bearer.")]),
            Presented::Token("q".into())
        );
        assert_eq!(token("/ws?token=", &[]), Presented::Nothing);
    }

    #[test]
    fn other_schemes_are_ignored() {
        assert_eq!(
            token("/ws", &[("Authorization", "Basic abc")]),
            Presented::Nothing
        );
    }

    #[test]
    fn query_tokens_are_percent_decoded_and_plus_stays() {
        assert_eq!(
            token("/ws?token=a%2Bb+c", &[]),
            Presented::Token("a+b+c".into())
        );
        assert_eq!(token("/ws?token=a%zz", &[]), Presented::Malformed);
        assert_eq!(token("/ws?token=a%20b", &[]), Presented::Malformed);
        assert_eq!(token("/ws?tok%65n=x", &[]), Presented::Token("x".into()));
    }

    #[test]
    fn subprotocols_from_all_lines_in_order() {
        let c = extract_credentials(&request(
            "/ws",
            &[
                ("Sec-WebSocket-Protocol", "bearer.t"),
                ("Sec-WebSocket-Protocol", "chat, echo"),
            ],
        ));
        assert_eq!(c.subprotocol.as_deref(), Some("chat"));
        assert!(!c.only_token_subprotocols);
        let c = extract_credentials(&request("/ws", &[("Sec-WebSocket-Protocol", "bearer.t")]));
        assert!(c.only_token_subprotocols);
    }
}
