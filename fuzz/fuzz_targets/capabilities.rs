//! EHLO capabilities from any reply the parser accepts: never panics, and the typed
//! accessors agree with the generic ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::{Capabilities, ReplyParser};

fuzz_target!(|data: &[u8]| {
    let mut p = ReplyParser::new();
    p.feed(data);
    while let Ok(Some(reply)) = p.next_reply() {
        let caps = Capabilities::from_ehlo(&reply);
        let _ = (caps.domain(), caps.size(), caps.auth_line());
        for mech in caps.auth_mechanisms() {
            assert_eq!(mech, &mech.to_ascii_uppercase());
        }
        assert_eq!(caps.pipelining(), caps.supports("pipelining"));
        assert_eq!(caps.starttls(), caps.supports("StartTLS"));
        for (keyword, params) in caps.iter() {
            assert!(caps.supports(keyword));
            assert_eq!(caps.params(keyword), Some(params));
        }
        if !caps.auth_mechanisms().is_empty() {
            assert!(caps.supports("AUTH"));
        }
    }
});
