mod common;
use common::*;

#[test]
fn alice_connects_and_gets_an_echo() {
    let server = start(wsauth::Config::default());
    let mut ws = connect_alice(server.local_addr());
    ws.send(tungstenite::Message::text("hi")).unwrap();
    assert_eq!(next_text(&mut ws), "Message text was: hi");
    server.stop();
}
