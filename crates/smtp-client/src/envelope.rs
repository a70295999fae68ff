//! The envelope of one message: sender, recipients and their ESMTP parameters.

use smtp_proto::{Body, ForwardPath, MailParams, RcptParams, ReversePath};

use crate::error::RefusedRecipient;

/// The envelope of one message for [`send`](crate::SmtpClient::send): `MAIL FROM`, each
/// `RCPT TO`, their parameters, and how the body should travel.
///
/// Parameters the client can work out are filled in by itself: `SMTPUTF8` when an address is
/// not ASCII, `SIZE` when a size is given and the server offers SIZE, `BODY=8BITMIME` when
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
    /// Recipients the server accepted (in the order given).
    pub accepted: Vec<ForwardPath>,
    /// Recipients the server refused, each with its reply (Net::SMTP's SkipBad); a 4xx
    /// refusal is temporary ([`RefusedRecipient::is_temporary`]).
    pub refused: Vec<RefusedRecipient>,
    /// Recipients past the server's limit for one transaction (RFC 5321 4.5.3.1.10:
    /// `452 4.5.3` too many recipients): not refused, but to be sent the message again in a
    /// new transaction, which [`send_to_all`](crate::SmtpClient::send_to_all) does.
    pub deferred: Vec<RefusedRecipient>,
    /// The reply to the end of data (or BDAT LAST): usually holds the queue id.
    pub reply: smtp_proto::Reply,
}

/// The outcome of a batch of RCPT commands in which at least one recipient was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientsReport {
    /// Recipients the server accepted.
    pub accepted: Vec<ForwardPath>,
    /// Recipients the server refused, each with its reply.
    pub refused: Vec<RefusedRecipient>,
    /// Recipients past the server's limit for one transaction (`452 4.5.3`): to be given
    /// in a new transaction.
    pub deferred: Vec<RefusedRecipient>,
}
