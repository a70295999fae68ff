//! Postfix's XCLIENT and XFORWARD: what the server must have offered before either is sent.
//!
//! The EHLO reply lists the attributes the server takes (`XCLIENT NAME ADDR PROTO HELO
//! ...`); a command with any other would be refused with 501, and an XCLIENT the server
//! does not offer with 502 or 550: both are refused here, before anything is sent. The
//! XCLIENT exchange itself (the new 220 greeting, the EHLO after it) is a setup step
//! (`setup.rs`).

use smtp_proto::{AttrName, Attrs};

use super::core::Core;
use crate::error::Error;

/// Refuses `attrs` unless the server offered `keyword` with each of their names.
pub(super) fn check_offered<A: AttrName>(
    core: &Core,
    keyword: &'static str,
    attrs: &Attrs<A>,
) -> Result<(), Error> {
    let offered = core.caps.as_ref().and_then(|c| c.params(keyword));
    let Some(offered) = offered else {
        return Err(Error::ExtensionMissing {
            extension: keyword,
            needed_for: keyword,
        });
    };
    for (attr, _) in attrs.iter() {
        if !offered.iter().any(|o| o.eq_ignore_ascii_case(attr.name())) {
            return Err(Error::AttributeNotOffered {
                extension: keyword,
                attribute: attr.name(),
            });
        }
    }
    Ok(())
}
