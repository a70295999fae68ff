//! What a message needs from the server, checked before anything of it is sent: SMTPUTF8
//! for non-ASCII addresses (or, without it, domains as IDNA A-labels), the SIZE limit, DSN, CHUNKING, BINARYMIME and 8BITMIME when the
//! body is declared so.

use smtp_proto::{Body, Capabilities, EsmtpParam, SizeLimit};

use super::config::Protocol;
use super::core::Core;
use crate::envelope::Envelope;
use crate::error::Error;

/// An envelope checked against the server's capabilities, its parameters completed.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) envelope: Envelope,
    /// Send the body with BDAT (CHUNKING).
    pub(super) bdat: bool,
    /// 8-bit bytes may be sent (BODY=8BITMIME or BINARYMIME declared).
    pub(super) eight_bit_ok: bool,
    pub(super) pipelined: bool,
    /// `MAIL ... PRDR` sent: a 353 and a reply per recipient may come before the final one.
    pub(super) prdr: bool,
}

fn missing(extension: &'static str, needed_for: &'static str) -> Error {
    Error::ExtensionMissing {
        extension,
        needed_for,
    }
}

pub(super) fn prepare(core: &Core, mut envelope: Envelope) -> Result<Prepared, Error> {
    let caps = core.caps.as_ref();
    let has = |offers: fn(&Capabilities) -> bool| core.has(offers);

    if envelope.needs_smtp_utf8()
        && !envelope.mail_params.smtp_utf8
        && !has(Capabilities::smtp_utf8)
    {
        // Without SMTPUTF8 a domain in Unicode goes as its A-labels; a non-ASCII local
        // part has no ASCII form.
        ascii_domains(&mut envelope)?;
    }
    if envelope.needs_smtp_utf8() || envelope.mail_params.smtp_utf8 {
        if !has(Capabilities::smtp_utf8) {
            return Err(missing("SMTPUTF8", "a non-ASCII address"));
        }
        envelope.mail_params.smtp_utf8 = true;
    }
    let limit = caps.and_then(Capabilities::size);
    if let (Some(size), Some(SizeLimit::Max(limit))) = (envelope.size, limit) {
        if size > limit {
            return Err(Error::SizeExceeded { size, limit });
        }
    }
    envelope.mail_params.size = if limit.is_some() { envelope.size } else { None };
    let dsn_asked = envelope.mail_params.ret.is_some()
        || envelope.mail_params.envid.is_some()
        || envelope
            .recipients
            .iter()
            .any(|(_, p)| p.notify.is_some() || p.orcpt.is_some());
    if dsn_asked && !has(Capabilities::dsn) {
        return Err(missing("DSN", "RET, ENVID, NOTIFY or ORCPT"));
    }
    let prdr = envelope.prdr && core.config.protocol == Protocol::Smtp;
    if prdr {
        if !core.has(|c| c.supports("PRDR")) {
            return Err(missing("PRDR", "per-recipient data responses"));
        }
        envelope
            .mail_params
            .extra
            .push(EsmtpParam::new("PRDR", None)?);
    }
    let mut bdat = envelope.prefer_chunking && has(Capabilities::chunking);
    match envelope.declared_body() {
        Some(Body::BinaryMime) => {
            if !has(Capabilities::chunking) {
                return Err(missing("CHUNKING", "BODY=BINARYMIME"));
            }
            if !has(Capabilities::binary_mime) {
                return Err(missing("BINARYMIME", "BODY=BINARYMIME"));
            }
            bdat = true;
        }
        Some(Body::EightBitMime) if !has(Capabilities::eight_bit_mime) => {
            return Err(missing("8BITMIME", "BODY=8BITMIME"));
        }
        _ => {}
    }
    let eight_bit_ok = matches!(
        envelope.declared_body(),
        Some(Body::EightBitMime | Body::BinaryMime)
    );
    Ok(Prepared {
        envelope,
        bdat,
        eight_bit_ok,
        pipelined: core.pipelining(),
        prdr,
    })
}

/// Every address whose local part is ASCII gets its domain as A-labels (IDNA); an address
/// with a non-ASCII local part is left for the SMTPUTF8 check to refuse. An IDNA failure is
/// [`Error::InvalidInput`], before anything is sent.
fn ascii_domains(envelope: &mut Envelope) -> Result<(), Error> {
    let ascii_local = |m: Option<&smtp_proto::Mailbox>| m.is_none_or(|m| m.local_part().is_ascii());
    if ascii_local(envelope.from.mailbox()) {
        envelope.from = envelope.from.to_ascii_domain()?;
    }
    for (to, _) in &mut envelope.recipients {
        if ascii_local(to.mailbox()) {
            *to = to.to_ascii_domain()?;
        }
    }
    Ok(())
}

/// The first chunk of an undeclared body decides BODY=: 8-bit data needs 8BITMIME, and a
/// body longer than one chunk is declared 8BITMIME while that is still possible (RFC 6152
/// allows it for 7-bit content too).
pub(super) fn declare_body(
    core: &Core,
    prepared: &mut Prepared,
    first_chunk: &[u8],
    last: bool,
) -> Result<(), Error> {
    if prepared.envelope.declared_body().is_some() {
        return Ok(());
    }
    let eight_bit = has_8bit(first_chunk);
    let offered = core.has(Capabilities::eight_bit_mime);
    if eight_bit && !offered {
        return Err(missing("8BITMIME", "8-bit data in the body"));
    }
    if (eight_bit || !last) && offered {
        prepared.envelope.mail_params.body = Some(Body::EightBitMime);
        prepared.eight_bit_ok = true;
    }
    Ok(())
}

/// Whether any octet has its high bit set (`is_ascii` tests a word at a time).
pub(super) fn has_8bit(bytes: &[u8]) -> bool {
    !bytes.is_ascii()
}
