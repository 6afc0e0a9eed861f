//! The plain-HTTP answers: the page, the health check, `/ws` without an
//! upgrade, other paths and methods, bad upgrades, and how every answer is framed.

mod common;

use common::*;
use wsauth::Config;

/// The test page, as the server serves it.
const PAGE: &str = include_str!("../www/index.html");

/// The header lines of an answer, without the status line.
fn header_lines(answer: &str) -> Vec<&str> {
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().skip(1).collect()
}

// ---- the page ----

#[test]
fn root_and_index_html_serve_the_page_as_utf8_html() {
    let server = start(Config::default());
    for path in ["/", "/index.html"] {
        let answer = request(server.local_addr(), "GET", path);
        assert_eq!(status(&answer), 200, "{path}: {answer}");
        assert_eq!(
            header(&answer, "Content-Type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert_eq!(body(&answer), PAGE, "{path}");
        assert_well_framed(&answer);
    }
}

#[test]
fn the_page_carries_the_security_headers() {
    let server = start(Config::default());
    for path in ["/", "/index.html"] {
        let answer = request(server.local_addr(), "GET", path);
        assert_eq!(header(&answer, "X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(header(&answer, "Referrer-Policy"), Some("no-referrer"));
        assert_eq!(header(&answer, "Cache-Control"), Some("no-store"));
        let csp = header(&answer, "Content-Security-Policy").unwrap_or_default();
        assert!(!csp.is_empty(), "{path}: no Content-Security-Policy");
    }
}

#[test]
fn a_query_string_does_not_change_the_route() {
    let server = start(Config::default());
    let addr = server.local_addr();
    assert_eq!(status(&request(addr, "GET", "/?x=1")), 200);
    assert_eq!(body(&request(addr, "GET", "/healthz?probe=1")), "ok\n");
    assert_eq!(status(&request(addr, "GET", "/ws?token=x")), 426);
    assert_eq!(status(&request(addr, "GET", "/nope?x=/")), 404);
}

#[test]
fn head_of_the_page_has_the_same_headers_and_no_body() {
    let server = start(Config::default());
    for path in ["/", "/index.html"] {
        let get = request(server.local_addr(), "GET", path);
        let head = request(server.local_addr(), "HEAD", path);
        assert_eq!(status(&head), 200, "{path}: {head}");
        assert_eq!(header_lines(&head), header_lines(&get), "{path}");
        assert_eq!(
            header(&head, "Content-Length"),
            Some(PAGE.len().to_string().as_str()),
            "{path}: HEAD states the length of the body it leaves out"
        );
        assert_eq!(body(&head), "", "{path}: HEAD has no body");
    }
}

// ---- the health check ----

#[test]
fn healthz_answers_ok_and_a_newline() {
    let server = start(Config::default());
    let answer = request(server.local_addr(), "GET", "/healthz");
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(body(&answer), "ok\n");
    assert_well_framed(&answer);
}

#[test]
fn head_of_healthz_has_the_same_headers_and_no_body() {
    let server = start(Config::default());
    let get = request(server.local_addr(), "GET", "/healthz");
    let head = request(server.local_addr(), "HEAD", "/healthz");
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(header_lines(&head), header_lines(&get));
    assert_eq!(header(&head, "Content-Length"), Some("3"));
    assert_eq!(body(&head), "");
}

/// RFC 9110 §9.3.2: a server MUST NOT send content in an answer to `HEAD`,
/// whatever the status; `Content-Length` still states the `GET` body's length.
#[test]
fn no_answer_to_head_has_a_body() {
    let server = start(Config::default());
    for path in ["/", "/index.html", "/healthz", "/ws", "/nope"] {
        let answer = request(server.local_addr(), "HEAD", path);
        assert!(header(&answer, "Content-Length").is_some(), "HEAD {path}");
        assert_eq!(body(&answer), "", "HEAD {path}: {answer}");
    }
}

// ---- /ws without an upgrade, other paths, other methods ----

#[test]
fn get_ws_without_an_upgrade_gets_426_naming_websocket() {
    let server = start(Config::default());
    let answer = request(server.local_addr(), "GET", "/ws");
    assert_eq!(status(&answer), 426, "{answer}");
    assert_eq!(header(&answer, "Upgrade"), Some("websocket"));
    assert_well_framed(&answer);
}

#[test]
fn any_other_path_gets_404_whatever_the_method() {
    let server = start(Config::default());
    let addr = server.local_addr();
    for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"] {
        for path in [
            "/nope",
            "/index.htm",
            "/healthz/",
            "/ws/",
            "/WS",
            "//",
            "/favicon.ico",
        ] {
            let answer = request(addr, method, path);
            assert_eq!(status(&answer), 404, "{method} {path}: {answer}");
            assert!(header(&answer, "Allow").is_none(), "{method} {path}");
        }
    }
}

#[test]
fn another_method_on_the_page_or_healthz_gets_405_allowing_get_and_head() {
    let server = start(Config::default());
    for path in ["/", "/index.html", "/healthz"] {
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
            let answer = request(server.local_addr(), method, path);
            assert_eq!(status(&answer), 405, "{method} {path}: {answer}");
            assert_eq!(
                header_values(&answer, "Allow"),
                ["GET, HEAD"],
                "{method} {path}"
            );
            assert_well_framed(&answer);
        }
    }
}

#[test]
fn another_method_on_ws_gets_405_allowing_only_get_so_head_too() {
    let server = start(Config::default());
    for method in ["HEAD", "POST", "PUT", "DELETE", "OPTIONS"] {
        let answer = request(server.local_addr(), method, "/ws");
        assert_eq!(status(&answer), 405, "{method} /ws: {answer}");
        assert_eq!(header_values(&answer, "Allow"), ["GET"], "{method} /ws");
        if method != "HEAD" {
            assert_well_framed(&answer);
        }
    }
}

#[test]
fn an_upgrade_with_another_method_gets_405() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let upgrade = upgrade_request(addr, "/ws", &[&format!("Authorization: Bearer {ALICE}")]);
    let answer = raw(addr, upgrade.replacen("GET", "POST", 1).as_bytes());
    assert_eq!(status(&answer), 405, "{answer}");
    assert_eq!(header(&answer, "Allow"), Some("GET"));
}

// ---- bad upgrades ----

#[test]
fn a_bad_upgrade_request_gets_400() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let token = format!("Authorization: Bearer {ALICE}");
    let good = upgrade_request(addr, "/ws", &[&token]);
    let cases = [
        (
            "no Sec-WebSocket-Key",
            good.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
        ),
        (
            "version 12",
            good.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12"),
        ),
        (
            "no Sec-WebSocket-Version",
            good.replace("Sec-WebSocket-Version: 13\r\n", ""),
        ),
        (
            "no Connection: Upgrade",
            good.replace("Connection: Upgrade\r\n", ""),
        ),
        ("HTTP/1.0", good.replacen("HTTP/1.1", "HTTP/1.0", 1)),
    ];
    for (what, request) in cases {
        let answer = raw(addr, request.as_bytes());
        assert_eq!(status(&answer), 400, "{what}: {answer}");
        assert_well_framed(&answer);
    }
}

#[test]
fn a_bad_upgrade_without_a_token_still_gets_400() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let request = upgrade_request(addr, "/ws", &[])
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12");
    let answer = raw(addr, request.as_bytes());
    assert_eq!(status(&answer), 400, "{answer}");
}

// ---- every answer ----

#[test]
fn every_answer_has_a_correct_content_length_and_connection_close() {
    let server = patient_server();
    let addr = server.local_addr();
    let requests: Vec<Vec<u8>> = vec![
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(),
        b"GET /index.html HTTP/1.0\r\n\r\n".to_vec(),
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(),
        format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(),
        format!("GET /missing HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(),
        format!("DELETE / HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(),
        format!("POST /ws HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n").into_bytes(),
        b"nonsense\r\n\r\n".to_vec(),
        head_of_len(9000, false),
        upgrade_request(addr, "/ws", &[]).into_bytes(),
        upgrade_request(addr, "/ws?token=wrong", &[]).into_bytes(),
        upgrade_request(addr, "/ws", &["Origin: http://evil.example"]).into_bytes(),
        upgrade_request(addr, "/ws", &["Sec-WebSocket-Protocol: bearer.x"]).into_bytes(),
    ];
    for request in requests {
        let answer = raw(addr, &request);
        assert!(status(&answer) >= 200, "{answer}");
        assert_well_framed(&answer);
    }
}

#[test]
fn a_connection_serves_one_request_then_closes() {
    let server = start(Config::default());
    let addr = server.local_addr();
    let two = format!(
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\nGET /nope HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    );
    let answer = raw(addr, two.as_bytes());
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(body(&answer), "ok\n", "only the first request is answered");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
}
