//! The NTLMSSP wire layout both sides read (MS-NLMP 2.2): the header every message starts
//! with, and the security buffers that point into the message. Each reader returns why the
//! bytes are refused as text; the caller wraps it in its own error (a malformed challenge on
//! the client, a malformed response on the server).

/// The NTLMSSP signature that starts every message.
pub(crate) const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Checks that `msg` is an NTLMSSP message of type `message_type` (1, 2 or 3) of between
/// `min_len` and `max_len` bytes: the length first, so that a huge message is refused
/// before anything in it is read, then the signature and the type.
pub(crate) fn check_header(
    msg: &[u8],
    message_type: u32,
    min_len: usize,
    max_len: usize,
) -> Result<(), String> {
    if msg.len() > max_len {
        return Err(format!(
            "type-{message_type} message of {} bytes, more than the {max_len} accepted",
            msg.len()
        ));
    }
    if msg.len() < min_len {
        return Err(format!(
            "type-{message_type} message of {} bytes, need at least {min_len}",
            msg.len()
        ));
    }
    if msg.get(..8) != Some(&SIGNATURE[..]) {
        return Err("no NTLMSSP signature".into());
    }
    let kind = u32_at(msg, 8).ok_or("no message type")?;
    if kind != message_type {
        return Err(format!("message type {kind}, expected {message_type}"));
    }
    Ok(())
}

/// The bytes that the security buffer (length, capacity, offset) at `at` points to, checked
/// to lie inside `msg`; `what` names the field in the refusal.
pub(crate) fn security_buffer<'a>(
    msg: &'a [u8],
    at: usize,
    what: &str,
) -> Result<&'a [u8], String> {
    let truncated = || format!("{what}: truncated header");
    let len = usize::from(u16_at(msg, at).ok_or_else(truncated)?);
    let offset = u32_at(msg, at + 4).ok_or_else(truncated)?;
    if len == 0 {
        return Ok(&[]);
    }
    let start = usize::try_from(offset).map_err(|_| format!("{what}: offset too large"))?;
    start
        .checked_add(len)
        .filter(|end| *end <= msg.len())
        .map(|end| &msg[start..end])
        .ok_or_else(|| {
            format!(
                "{what}: offset {offset} + length {len} past the end ({} bytes)",
                msg.len()
            )
        })
}

/// Bytes from hex, spaces ignored: how MS-NLMP writes its test vectors.
#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u32, len: usize) -> Vec<u8> {
        let mut m = SIGNATURE.to_vec();
        m.extend_from_slice(&kind.to_le_bytes());
        m.resize(len, 0);
        m
    }

    #[test]
    fn header_checks_length_signature_and_type() {
        assert_eq!(check_header(&message(2, 32), 2, 32, 64), Ok(()));
        assert_eq!(check_header(&message(2, 64), 2, 32, 64), Ok(()));
        for (msg, why) in [
            (
                message(2, 31),
                "type-2 message of 31 bytes, need at least 32",
            ),
            (
                message(2, 65),
                "type-2 message of 65 bytes, more than the 64 accepted",
            ),
            (vec![0; 40], "no NTLMSSP signature"),
            (message(3, 40), "message type 3, expected 2"),
        ] {
            assert_eq!(check_header(&msg, 2, 32, 64), Err(why.to_owned()));
        }
        // A minimum shorter than the header itself still refuses a truncated one.
        assert!(check_header(&SIGNATURE[..], 1, 0, 64).is_err());
        assert!(check_header(b"NTLM", 1, 0, 64).is_err());
    }

    #[test]
    fn security_buffers_stay_inside_the_message() {
        // Length 3 at offset 4: the "SSP" of the signature.
        let mut m = SIGNATURE.to_vec();
        m.extend_from_slice(&[3, 0, 3, 0, 4, 0, 0, 0]);
        assert_eq!(security_buffer(&m, 8, "x"), Ok(&b"SSP"[..]));
        assert_eq!(
            security_buffer(&m, 12, "x"),
            Err("x: truncated header".into())
        );
        for offset in [14u32, u32::MAX] {
            let mut bad = m.clone();
            bad[12..16].copy_from_slice(&offset.to_le_bytes());
            assert!(security_buffer(&bad, 8, "x").is_err(), "{offset}");
        }
        // An empty buffer's offset is never read.
        let mut empty = m.clone();
        empty[8..16].copy_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(security_buffer(&empty, 8, "x"), Ok(&[][..]));
    }
}
