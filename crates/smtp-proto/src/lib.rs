//! Sans-IO SMTP codec: the wire part of Net::Cmd.
//!
//! Everything that crosses the wire in an SMTP client session, and nothing else: no
//! sockets, no clock.
//!
//! - Validated values ([`Domain`], [`Mailbox`], [`ReversePath`], [`ForwardPath`],
//!   [`MailParams`], [`RcptParams`], [`EsmtpParam`], [`XText`], [`Text`]): constructors
//!   refuse CR, LF, NUL and anything outside the grammar, so no value can inject a line.
//! - [`Command`]: every client command, encoded into the caller's buffer, refused (not
//!   truncated) when over the RFC line limits; [`Command::Extension`] with a [`Verb`]
//!   and [`Argument`]s for an extension that has no typed command.
//! - [`Reply`] and [`ReplyParser`]; [`ReplyCode`]'s named codes (`ReplyCode::OK`, ...): incremental, bounded reply parsing; [`parse_reply`]
//!   for borrowing, httparse-style use.
//! - [`Capabilities`]: the extensions of an EHLO reply.
//! - [`DotStuffer`] / [`Unstuffer`]: DATA transparency, streaming.
//!
//! ```
//! use smtp_proto::{Command, Domain, ReplyParser};
//! let mut out = Vec::new();
//! Command::Ehlo(&Domain::new("client.example")?).encode(&mut out)?;
//! assert_eq!(out, b"EHLO client.example\r\n");
//!
//! let mut parser = ReplyParser::new();
//! parser.feed(b"250 OK\r\n");
//! let reply = parser.next_reply()?.expect("a complete reply");
//! assert!(reply.is_positive_completion());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod capabilities;
mod command;
mod domain;
mod dot_stuff;
mod extension;
mod idn;
mod invalid;
mod params;
mod reply;
mod reply_parser;
mod value;
mod xclient;

pub use address::{ForwardPath, Mailbox, ReversePath, MAX_LOCAL_PART_LEN, MAX_MAILBOX_LEN};
pub use capabilities::{Capabilities, SizeLimit};
pub use command::{
    auth_line_fits, decode_challenge, ChallengeError, Command, CommandError,
    MAX_AUTH_RESPONSE_LINE, MAX_COMMAND_LINE,
};
pub use domain::{Domain, MAX_DOMAIN_LEN};
pub use dot_stuff::{crlf_normalise, unstuff, DotStuffer, UnstuffStatus, Unstuffer};
pub use extension::{Argument, Verb};
pub use invalid::{InvalidInput, InvalidReason};
pub use params::{
    AuthParam, Body, EsmtpParam, MailParams, Notify, Orcpt, RcptParams, Ret, Text, XText,
};
pub use reply::{EnhancedStatus, Reply, ReplyCode, Severity};
pub use reply_parser::{parse_reply, ReplyError, ReplyLimits, ReplyParser, Status};
pub use xclient::{
    AttrName, AttrValue, Attrs, ClientProto, Source, Xclient, XclientAttr, Xforward, XforwardAttr,
};
