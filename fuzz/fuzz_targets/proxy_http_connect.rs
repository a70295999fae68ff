//! The HTTP CONNECT response parser and the handshake on arbitrary bytes: never panic, the
//! head is bounded, a complete head does not change when more bytes follow, the reason
//! kept is printable ASCII, and the handshake reaches the same outcome however the proxy's
//! bytes are split (the bytes after the head handed back whole).
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use smtp_client::proxy::http_connect::{parse_response, MAX_RESPONSE_HEAD};
use smtp_client::proxy::ProxyError;
use smtp_client::{Proxy, ProxyEvent, ProxyHandshake};
use smtp_proto::Status;

fn handshake(chunks: &[&[u8]]) -> Result<ProxyEvent, ProxyError> {
    let proxy = Proxy::http_connect("127.0.0.1", 8080).user("u").password("p");
    let mut hs = ProxyHandshake::new(&proxy, "localhost", 25, Instant::now()).expect("valid");
    let n = hs.output().len();
    hs.consume_output(n);
    for chunk in chunks {
        hs.handle_input(chunk);
    }
    hs.poll()
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    if let Ok(Status::Complete((response, n))) = parse_response(data) {
        assert!(n <= data.len() && n <= MAX_RESPONSE_HEAD);
        assert!((100..1000).contains(&response.status));
        assert!(response.reason.bytes().all(|b| (b' '..=b'~').contains(&b)));
        match parse_response(&data[..n]) {
            Ok(Status::Complete((again, m))) => assert_eq!((again, m), (response, n)),
            other => panic!("the complete head parses as {other:?}"),
        }
    }

    let cut = (usize::from(cut) * 7).min(data.len());
    let whole = handshake(&[data]);
    let split = handshake(&[&data[..cut], &data[cut..]]);
    assert_eq!(whole, split);
    if let Ok(ProxyEvent::Connected { early }) = &whole {
        assert!(data.ends_with(early));
    }
});
