//! The SOCKS5 reply parsers and the handshake on arbitrary bytes: never panic, a complete
//! reply never claims more than it was given nor changes when more bytes follow, a cut
//! before its end is partial, and the handshake reaches the same outcome however the
//! proxy's bytes are split.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use smtp_client::proxy::socks5::{parse_connect_reply, parse_credentials_reply, parse_method_reply};
use smtp_client::proxy::ProxyError;
use smtp_client::{Proxy, ProxyEvent, ProxyHandshake};
use smtp_proto::Status;

/// Checks one parser's contract on `data`.
fn check<T: PartialEq + std::fmt::Debug>(
    parse: impl Fn(&[u8]) -> Result<Status<(T, usize)>, ProxyError>,
    data: &[u8],
) {
    if let Ok(Status::Complete((value, n))) = parse(data) {
        assert!(n <= data.len() && n >= 2);
        match parse(&data[..n]) {
            Ok(Status::Complete((again, m))) => assert_eq!((again, m), (value, n)),
            other => panic!("the complete prefix parses as {other:?}"),
        }
        for cut in 0..n {
            // A cut is partial, or an error already visible in its first bytes.
            if let Ok(Status::Complete(_)) = parse(&data[..cut]) {
                panic!("complete at {cut} < {n}");
            }
        }
    }
}

/// Runs a handshake for `localhost:25`, feeding `chunks`; returns what `poll` says.
fn handshake(credentials: bool, chunks: &[&[u8]]) -> Result<ProxyEvent, ProxyError> {
    let mut proxy = Proxy::socks5("127.0.0.1", 1080);
    if credentials {
        proxy = proxy.user("u").password("p");
    }
    let mut hs = ProxyHandshake::new(&proxy, "localhost", 25, Instant::now()).expect("valid");
    for chunk in chunks {
        let n = hs.output().len();
        hs.consume_output(n);
        hs.handle_input(chunk);
    }
    hs.poll()
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    check(parse_method_reply, data);
    check(parse_credentials_reply, data);
    check(parse_connect_reply, data);

    let credentials = choice & 1 == 1;
    let cut = usize::from(choice >> 1).min(data.len());
    let whole = handshake(credentials, &[data]);
    let split = handshake(credentials, &[&data[..cut], &data[cut..]]);
    assert_eq!(whole, split);
    if let Ok(ProxyEvent::Connected { early }) = &whole {
        assert!(data.ends_with(early));
    }
});
