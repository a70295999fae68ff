//! The envelope of one message: sender, recipients and their ESMTP parameters.

use smtp_proto::{Body, ForwardPath, MailParams, RcptParams, ReversePath};

use crate::error::RefusedRecipient;

/// The envelope of one message for [`send`](crate::SmtpClient::send): `MAIL FROM`, each
/// `RCPT TO`, their parameters, and how the body should travel.
///
/// Parameters the client can work out are filled in by itself: `SMTPUTF8` when an address is
/// not ASCII (or, when the server lacks it, domains in Unicode as IDNA A-labels), `SIZE` when a size is given and the server offers SIZE, `BODY=8BITMIME` when
/// the body holds 8-bit bytes (see [`send`](crate::SmtpClient::send)).
///
/// ```
/// use smtp_client::Envelope;
/// use smtp_proto::{ForwardPath, Mailbox, ReversePath};
/// let from = ReversePath::Mailbox(Mailbox::new("alice@example.test")?);
/// let env = Envelope::new(from, [ForwardPath::new("bob@example.test")?]).size(1200);
/// assert_eq!(env.recipients().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Envelope {
    pub(crate) from: ReversePath,
    pub(crate) mail_params: MailParams,
    pub(crate) recipients: Vec<(ForwardPath, RcptParams)>,
    pub(crate) size: Option<u64>,
    pub(crate) prefer_chunking: bool,
    pub(crate) prdr: bool,
}

impl Envelope {
    /// An envelope from `from` to each of `to`, with no parameters.
    pub fn new(from: ReversePath, to: impl IntoIterator<Item = ForwardPath>) -> Envelope {
        Envelope {
            from,
            mail_params: MailParams::default(),
            recipients: to.into_iter().map(|r| (r, RcptParams::default())).collect(),
            size: None,
            prefer_chunking: false,
            prdr: false,
        }
    }

    /// Adds a recipient with its own parameters (NOTIFY, ORCPT).
    pub fn recipient(mut self, to: ForwardPath, params: RcptParams) -> Envelope {
        self.recipients.push((to, params));
        self
    }

    /// Sets the MAIL FROM parameters (BODY, RET, ENVID, AUTH=, extra ones). `SIZE` and
    /// `SMTPUTF8` are added by the client when needed.
    pub fn mail_params(mut self, params: MailParams) -> Envelope {
        self.mail_params = params;
        self
    }

    /// Declares the message size in bytes (as sent, before dot-stuffing): checked against the
    /// server's SIZE limit before anything is sent, and sent as `SIZE=`.
    pub fn size(mut self, bytes: u64) -> Envelope {
        self.size = Some(bytes);
        self
    }

    /// Sends the body with BDAT (RFC 3030 CHUNKING) when the server offers it, instead of DATA.
    /// `BODY=BINARYMIME` always uses BDAT.
    pub fn prefer_chunking(mut self, yes: bool) -> Envelope {
        self.prefer_chunking = yes;
        self
    }

    /// Asks for a reply per recipient after the data (PRDR, `MAIL FROM:<..> PRDR`, as
    /// Exim implements draft-hall-prdr-00): after the end of data the server answers 353,
    /// then one reply per accepted recipient, in order
    /// ([`SendReport::per_recipient`]), then a final reply ([`SendReport::reply`]).
    /// [`Error::ExtensionMissing`](crate::Error::ExtensionMissing) before sending when the
    /// server does not offer PRDR. Not used under LMTP, whose replies are per recipient
    /// anyway.
    pub fn prdr(mut self, yes: bool) -> Envelope {
        self.prdr = yes;
        self
    }

    /// The sender.
    pub fn from(&self) -> &ReversePath {
        &self.from
    }

    /// The recipients with their parameters.
    pub fn recipients(&self) -> &[(ForwardPath, RcptParams)] {
        &self.recipients
    }

    /// True when the sender or a recipient is not ASCII (the transaction needs SMTPUTF8).
    pub fn needs_smtp_utf8(&self) -> bool {
        !self.from.is_ascii() || self.recipients.iter().any(|(r, _)| !r.is_ascii())
    }

    pub(crate) fn declared_body(&self) -> Option<Body> {
        self.mail_params.body
    }
}

/// What became of a message: the recipients accepted, those refused, the final reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// Recipients the server accepted at RCPT (in the order given).
    pub accepted: Vec<ForwardPath>,
    /// The server's reply to the RCPT of each of [`accepted`](Self::accepted), in the same
    /// order (`250 2.1.5 Ok`; a 251 "will forward" shows here too).
    pub accepted_replies: Vec<RecipientReply>,
    /// Recipients the server refused, each with its reply (Net::SMTP's SkipBad); a 4xx
    /// refusal is temporary ([`RefusedRecipient::is_temporary`]).
    pub refused: Vec<RefusedRecipient>,
    /// Recipients past the server's limit for one transaction (RFC 5321 4.5.3.1.10:
    /// `452 4.5.3` too many recipients): not refused, but to be sent the message again in a
    /// new transaction, which [`send_to_all`](crate::SmtpClient::send_to_all) does.
    pub deferred: Vec<RefusedRecipient>,
    /// The reply to the end of data (or BDAT LAST): usually holds the queue id. Under LMTP,
    /// the first positive one of [`per_recipient`](Self::per_recipient).
    pub reply: smtp_proto::Reply,
    /// The replies given for each recipient after the data, in RCPT order: under LMTP
    /// (RFC 2033 4.2), and with PRDR when the server answered it, one for every recipient
    /// in [`accepted`](Self::accepted), each saying whether the message was taken for that
    /// recipient. Otherwise empty: the one reply is [`reply`](Self::reply).
    pub per_recipient: Vec<RecipientReply>,
    /// What became of a PRDR request ([`Envelope::prdr`]); `None` when none was made.
    pub prdr: Option<Prdr>,
}

/// How the server answered a PRDR request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prdr {
    /// 353, a reply per recipient ([`SendReport::per_recipient`]), then the final reply.
    Answered,
    /// The server accepted `MAIL ... PRDR` but answered the end of data with its final
    /// reply at once, without a 353 (Exim does so for a single recipient): that reply
    /// stands for every recipient and [`SendReport::per_recipient`] is empty.
    Skipped,
}

impl SendReport {
    /// The recipients the message reached: under LMTP and PRDR those whose reply after the
    /// data is positive; otherwise every accepted one (the final reply was positive).
    pub fn delivered(&self) -> Vec<&ForwardPath> {
        if self.per_recipient.is_empty() {
            return self.accepted.iter().collect();
        }
        self.per_recipient
            .iter()
            .filter(|r| r.reply.is_positive_completion())
            .map(|r| &r.recipient)
            .collect()
    }
}

/// A recipient and the server's reply for it after the data (LMTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReply {
    /// The recipient, as given.
    pub recipient: ForwardPath,
    /// The server's reply for this recipient.
    pub reply: smtp_proto::Reply,
}

/// The outcome of a batch of RCPT commands in which at least one recipient was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientsReport {
    /// Recipients the server accepted.
    pub accepted: Vec<ForwardPath>,
    /// The server's reply to the RCPT of each of [`accepted`](Self::accepted), in the same
    /// order.
    pub accepted_replies: Vec<RecipientReply>,
    /// Recipients the server refused, each with its reply.
    pub refused: Vec<RefusedRecipient>,
    /// Recipients past the server's limit for one transaction (`452 4.5.3`): to be given
    /// in a new transaction.
    pub deferred: Vec<RefusedRecipient>,
}
