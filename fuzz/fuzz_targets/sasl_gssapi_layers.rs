//! The GSSAPI security-layer tokens (RFC 4752 §3.1), as they are once unwrapped: the
//! server's 4-octet offer and the client's choice. Arbitrary bytes give a value or a typed
//! error, never a panic; a parsed offer or choice encodes back to the bytes it came from;
//! and the client's answer to any offer is "no security layer, size 0" and its
//! authorization id, or a refusal that says why (a malformed offer, or one without "no
//! security layer").
#![no_main]

use libfuzzer_sys::fuzz_target;
use sasl_mechs::gssapi::{answer_layer_offer, LayerChoice, LayerOffer, SecurityLayers};
use sasl_mechs::SaslError;

fuzz_target!(|data: &[u8]| {
    match LayerOffer::parse(data) {
        Ok(offer) => assert_eq!(&offer.encode()[..], data),
        Err(_) => assert_ne!(data.len(), 4),
    }
    match answer_layer_offer(data, "boss") {
        Ok(answer) => {
            assert_eq!(answer, b"\x01\x00\x00\x00boss");
            assert!(SecurityLayers::from_bits(data[0]).contains(SecurityLayers::NONE));
        }
        Err(SaslError::SecurityLayerRequired { offered, .. }) => {
            assert_eq!(data.len(), 4);
            assert!(!offered.contains(SecurityLayers::NONE));
            assert_eq!(offered.bits(), data[0]);
        }
        Err(SaslError::MalformedChallenge { .. }) => assert_ne!(data.len(), 4),
        Err(other) => panic!("unexpected error {other:?}"),
    }
    if let Ok(choice) = LayerChoice::parse(data) {
        assert_eq!(choice.encode(), data);
        assert!(choice.authzid.len() <= sasl_mechs::gssapi::MAX_AUTHZID);
    }
});
