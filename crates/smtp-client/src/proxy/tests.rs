//! The handshake without sockets: scripted proxies, one byte at a time, time as a value.

use std::sync::{Arc, Mutex};

use super::*;

fn start(proxy: &Proxy, host: &str, now: Instant) -> (ProxyHandshake, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let transcript: TranscriptFn =
        Box::new(move |d, l| sink.lock().unwrap().push(format!("{d} {l}")));
    let hs = ProxyHandshake::with_transcript(proxy, host, 587, now, Some(transcript)).unwrap();
    (hs, lines)
}

/// Takes all output.
fn sent(hs: &mut ProxyHandshake) -> Vec<u8> {
    let out = hs.output().to_vec();
    hs.consume_output(out.len());
    out
}

/// Feeds `bytes` one at a time, checking the handshake waits until the last.
fn feed_slowly(hs: &mut ProxyHandshake, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            assert_eq!(hs.poll(), Ok(ProxyEvent::NeedInput), "after {i} bytes");
        }
        hs.handle_input(&[*b]);
    }
}

#[test]
fn socks5_with_credentials_by_name_keeps_the_greeting() {
    let now = Instant::now();
    let proxy = Proxy::socks5("127.0.0.1", 11081)
        .user("alice")
        .password("s3cret");
    let (mut hs, transcript) = start(&proxy, "mx.example.test", now);
    assert_eq!(sent(&mut hs), [5, 2, 0, 2]);
    feed_slowly(&mut hs, &[5, 2]);
    assert_eq!(hs.poll(), Ok(ProxyEvent::NeedInput));
    assert_eq!(sent(&mut hs), b"\x01\x05alice\x06s3cret");
    feed_slowly(&mut hs, &[1, 0]);
    assert_eq!(hs.poll(), Ok(ProxyEvent::NeedInput));
    let connect = sent(&mut hs);
    assert_eq!(&connect[..5], [5, 1, 0, 3, 15]);
    assert_eq!(&connect[5..], b"mx.example.test\x02\x4b");
    feed_slowly(&mut hs, b"\x05\x00\x00\x01\x7f\x00\x00\x01\x9c");
    // The last byte of the reply and the greeting in one read.
    hs.handle_input(b"\x40220 mx\r\n");
    assert_eq!(
        hs.poll(),
        Ok(ProxyEvent::Connected {
            early: b"220 mx\r\n".to_vec()
        })
    );
    assert_eq!(hs.poll_timeout(), None);
    let transcript = transcript.lock().unwrap().join("\n");
    assert!(
        transcript.contains(">>> SOCKS5 username/password: alice ****"),
        "{transcript}"
    );
    assert!(!transcript.contains("s3cret"));
    assert!(!format!("{hs:?}{proxy:?}").contains("s3cret"));
}

#[test]
fn socks5_without_credentials_to_an_address() {
    let (mut hs, _) = start(&Proxy::socks5("::1", 1080), "[IPv6:::1]", Instant::now());
    assert_eq!(sent(&mut hs), [5, 1, 0]);
    hs.handle_input(&[5, 0]);
    let connect = sent(&mut hs);
    assert_eq!(connect.len(), 4 + 16 + 2);
    assert_eq!(connect[3], 4);
    hs.handle_input(&[5, 0, 0, 3, 1, b'x', 0, 1]);
    assert_eq!(hs.poll(), Ok(ProxyEvent::Connected { early: vec![] }));
}

#[test]
fn socks5_refusals_name_their_code() {
    let proxy = Proxy::socks5("127.0.0.1", 1080);
    let (mut hs, _) = start(&proxy, "mx.example.test", Instant::now());
    hs.handle_input(&[5, 0]);
    hs.handle_input(&[5, 2]);
    let err = hs.poll().unwrap_err();
    assert_eq!(err.reply_code(), Some(2));
    assert_eq!(
        err.to_string(),
        "SOCKS5 proxy refused the connection to mx.example.test:587: reply 2 (connection not allowed by ruleset)"
    );
    // Once handed out, the error is not repeated and nothing is asked for.
    assert_eq!(hs.poll(), Err(ProxyError::Closed));

    let (mut hs, _) = start(&proxy, "mx.example.test", Instant::now());
    hs.handle_input(&[5, 0xff]);
    assert_eq!(
        hs.poll(),
        Err(ProxyError::CredentialsRequired { code: 255 })
    );

    let with = proxy.clone().user("u").password("wrong");
    let (mut hs, _) = start(&with, "mx.example.test", Instant::now());
    hs.handle_input(&[5, 2, 1, 1]);
    assert_eq!(hs.poll(), Err(ProxyError::CredentialsRejected { code: 1 }));
}

#[test]
fn socks5_username_password_never_offered_is_malformed() {
    let (mut hs, _) = start(
        &Proxy::socks5("127.0.0.1", 1080),
        "mx.example.test",
        Instant::now(),
    );
    hs.handle_input(&[5, 2]);
    assert!(matches!(hs.poll(), Err(ProxyError::Malformed { .. })));
    assert!(hs.output().len() == 3, "nothing more is sent");
}

#[test]
fn http_connect_keeps_bytes_after_the_blank_line() {
    let proxy = Proxy::http_connect("127.0.0.1", 18889)
        .user("bob")
        .password("pw");
    let (mut hs, transcript) = start(&proxy, "127.0.0.1", Instant::now());
    let request = String::from_utf8(sent(&mut hs)).unwrap();
    assert_eq!(
        request,
        "CONNECT 127.0.0.1:587 HTTP/1.1\r\nHost: 127.0.0.1:587\r\nProxy-Authorization: Basic Ym9iOnB3\r\n\r\n"
    );
    feed_slowly(
        &mut hs,
        b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy\r\n\r",
    );
    hs.handle_input(b"\n220 mx ESMTP\r\n");
    assert_eq!(
        hs.poll(),
        Ok(ProxyEvent::Connected {
            early: b"220 mx ESMTP\r\n".to_vec()
        })
    );
    let transcript = transcript.lock().unwrap().join("\n");
    assert!(transcript.contains("Proxy-Authorization: Basic ****"));
    assert!(!transcript.contains("Ym9iOnB3"));
}

#[test]
fn http_connect_refusals() {
    let proxy = Proxy::http_connect("127.0.0.1", 18888);
    let (mut hs, _) = start(&proxy, "mx.example.test", Instant::now());
    hs.handle_input(b"HTTP/1.0 403 Filtered\r\n");
    let err = hs.poll().unwrap_err();
    assert_eq!(err.reply_code(), Some(403));
    assert_eq!(
        err.to_string(),
        "HTTP proxy refused the CONNECT to mx.example.test:587: 403 Filtered"
    );
    let (mut hs, _) = start(&proxy, "mx.example.test", Instant::now());
    hs.handle_input(b"HTTP/1.0 407 Proxy Authentication Required\r\n");
    assert_eq!(
        hs.poll(),
        Err(ProxyError::CredentialsRequired { code: 407 })
    );
    let with = proxy.user("u").password("wrong");
    let (mut hs, _) = start(&with, "mx.example.test", Instant::now());
    hs.handle_input(b"HTTP/1.0 401 Unauthorized\r\n");
    assert_eq!(
        hs.poll(),
        Err(ProxyError::CredentialsRejected { code: 401 })
    );
}

#[test]
fn a_stalled_proxy_times_out_at_the_absolute_deadline() {
    let now = Instant::now();
    let proxy = Proxy::http_connect("127.0.0.1", 18888).handshake_timeout(Duration::from_secs(5));
    let (mut hs, _) = start(&proxy, "mx.example.test", now);
    assert_eq!(hs.poll_timeout(), Some(now + Duration::from_secs(5)));
    hs.handle_input(b"HTTP/1.1 200 OK\r\n");
    hs.handle_timeout(now + Duration::from_secs(4));
    assert_eq!(hs.poll(), Ok(ProxyEvent::NeedInput));
    // Bytes arriving do not extend the deadline.
    hs.handle_input(b"X: y\r\n");
    assert_eq!(hs.poll_timeout(), Some(now + Duration::from_secs(5)));
    hs.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(
        hs.poll(),
        Err(ProxyError::Timeout {
            after: Duration::from_secs(5)
        })
    );
}

#[test]
fn a_proxy_that_closes_or_floods() {
    let (mut hs, _) = start(
        &Proxy::socks5("127.0.0.1", 1080),
        "mx.example.test",
        Instant::now(),
    );
    hs.handle_input(&[5]);
    hs.handle_eof();
    assert_eq!(hs.poll(), Err(ProxyError::Closed));
    let (mut hs, _) = start(
        &Proxy::http_connect("127.0.0.1", 1),
        "mx.example.test",
        Instant::now(),
    );
    hs.handle_input(b"HTTP/1.1 200 OK\r\n");
    for _ in 0..MAX_BUFFERED {
        hs.handle_input(b"X");
    }
    assert!(matches!(hs.poll(), Err(ProxyError::ReplyTooLong { .. })));
}

#[test]
fn caller_values_are_checked_before_anything_is_sent() {
    let now = Instant::now();
    let socks = Proxy::socks5("127.0.0.1", 1080);
    let err = ProxyHandshake::new(&socks, "mx.example.test\r\nRCPT", 25, now).unwrap_err();
    assert!(err.is_input(), "{err}");
    assert!(ProxyHandshake::new(&socks, &"a.".repeat(130), 25, now).is_err());
    assert!(ProxyHandshake::new(&socks.clone().user("u"), "mx.example.test", 25, now).is_err());
    let long = "p".repeat(256);
    assert!(
        ProxyHandshake::new(&socks.user("u").password(long), "mx.example.test", 25, now).is_err()
    );
    let http = Proxy::http_connect("127.0.0.1", 8080)
        .user("a:b")
        .password("c");
    assert!(ProxyHandshake::new(&http, "mx.example.test", 25, now).is_err());
}

#[test]
fn proxy_urls() {
    let p: Proxy = "socks5://alice@127.0.0.1:11081".parse().unwrap();
    assert_eq!(
        (p.kind(), p.host(), p.port(), p.username()),
        (ProxyKind::Socks5, "127.0.0.1", 11081, Some("alice"))
    );
    let p: Proxy = "http://[::1]:8888/".parse().unwrap();
    assert_eq!(
        (p.kind(), p.bare_host(), p.username()),
        (ProxyKind::HttpConnect, "::1", None)
    );
    assert_eq!(p.display_addr(), "[::1]:8888");
    for bad in [
        "127.0.0.1:1080",
        "socks4://h:1",
        "socks5://h",
        "socks5://h:0",
        "socks5://h:99999",
        "socks5://alice:secret@h:1",
        "socks5://@h:1",
        "http://h:1/path",
        "http://::1:8",
        "http://[h]:8",
        "http://h h:8",
        "http://bad_host!:8",
    ] {
        let err = bad.parse::<Proxy>().unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

#[test]
fn a_malformed_reply_reads_the_same_however_it_is_split() {
    // Found by fuzzing: the error quoted whatever happened to be buffered.
    let proxy = Proxy::socks5("127.0.0.1", 1080);
    let (mut whole, _) = start(&proxy, "localhost", Instant::now());
    whole.handle_input(&[0, 0, 0]);
    let (mut split, _) = start(&proxy, "localhost", Instant::now());
    split.handle_input(&[0, 0]);
    split.handle_input(&[0]);
    let err = whole.poll();
    assert_eq!(err, split.poll());
    assert_eq!(
        err.unwrap_err().to_string(),
        "malformed proxy reply: method selection: version is not 5 (received \\x00\\x00)"
    );
}

mod props {
    use proptest::prelude::*;

    use super::*;

    fn outcome(proxy: &Proxy, chunks: &[&[u8]]) -> Result<ProxyEvent, ProxyError> {
        let mut hs = ProxyHandshake::new(proxy, "mx.example.test", 25, Instant::now()).unwrap();
        for chunk in chunks {
            let n = hs.output().len();
            hs.consume_output(n);
            hs.handle_input(chunk);
        }
        hs.poll()
    }

    proptest! {
        /// However the proxy's bytes are cut, the handshake ends the same way.
        #[test]
        fn any_split_gives_the_same_outcome(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            cut in any::<prop::sample::Index>(),
            socks in any::<bool>(),
        ) {
            let proxy = if socks {
                Proxy::socks5("127.0.0.1", 1080).user("u").password("p")
            } else {
                Proxy::http_connect("127.0.0.1", 8080)
            };
            let cut = cut.index(bytes.len() + 1);
            prop_assert_eq!(
                outcome(&proxy, &[&bytes]),
                outcome(&proxy, &[&bytes[..cut], &bytes[cut..]])
            );
        }

        /// Every HTTP status line is read back with its code, the tunnel opening on 2xx only,
        /// and the bytes after a 2xx head handed back as they came.
        #[test]
        fn http_status_lines_round_trip(
            status in 100u16..1000,
            reason in "[ -~]{0,40}",
            after in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let head = format!("HTTP/1.1 {status} {reason}\r\nVia: x\r\n\r\n");
            let bytes = [head.as_bytes(), &after].concat();
            match outcome(&Proxy::http_connect("127.0.0.1", 8080), &[&bytes]) {
                Ok(ProxyEvent::Connected { early }) => {
                    prop_assert!((200..300).contains(&status));
                    prop_assert_eq!(early, after);
                }
                Err(err) => {
                    prop_assert!(!(200..300).contains(&status));
                    prop_assert_eq!(err.reply_code(), Some(status));
                }
                Ok(ProxyEvent::NeedInput) => prop_assert!(false, "a whole head is complete"),
            }
        }
    }
}
