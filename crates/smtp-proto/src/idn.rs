//! International domain names (IDNA 2008, RFC 5890-5891, with UTS #46 mapping): a domain in
//! Unicode (U-labels) and its ASCII form (A-labels, `xn--...`), for a server without
//! SMTPUTF8 (RFC 6531) and for EHLO, whose name goes out before the server says what it
//! supports.

use crate::address::{ForwardPath, Mailbox, ReversePath};
use crate::domain::Domain;
use crate::invalid::{InvalidInput, InvalidReason};

/// `domain` with every U-label made an A-label; an ASCII domain is checked and kept.
fn to_ascii(what: &'static str, domain: &str) -> Result<String, InvalidInput> {
    if domain.starts_with('[') {
        // An address literal has no labels.
        return Ok(domain.to_owned());
    }
    idna::domain_to_ascii_strict(domain).map_err(|_| {
        InvalidInput::new(
            what,
            domain.as_bytes(),
            InvalidReason::Syntax("is not a valid international domain name (IDNA 2008)"),
        )
    })
}

impl Domain {
    /// A domain given in Unicode (or ASCII), as its A-labels: `bücher.example` becomes
    /// `xn--bcher-kva.example`. For EHLO/HELO/LHLO, whose name must be ASCII.
    ///
    /// ```
    /// use smtp_proto::Domain;
    /// let d = Domain::from_unicode("bücher.example")?;
    /// assert_eq!(d.as_str(), "xn--bcher-kva.example");
    /// # Ok::<(), smtp_proto::InvalidInput>(())
    /// ```
    pub fn from_unicode(domain: &str) -> Result<Domain, InvalidInput> {
        Domain::new(&to_ascii("international domain", domain)?)
    }
}

impl Mailbox {
    /// The mailbox with its domain as A-labels, for a server that lacks SMTPUTF8: possible
    /// only when the local part is ASCII (RFC 6531 has no ASCII form of a UTF-8 local
    /// part). An ASCII mailbox comes back unchanged.
    pub fn to_ascii_domain(&self) -> Result<Mailbox, InvalidInput> {
        if self.is_ascii() {
            return Ok(self.clone());
        }
        if !self.local_part().is_ascii() {
            return Err(InvalidInput::new(
                "mailbox",
                self.as_str().as_bytes(),
                InvalidReason::Syntax("has a non-ASCII local part, which needs SMTPUTF8"),
            ));
        }
        let domain = to_ascii("mailbox domain", self.domain())?;
        Mailbox::new(&format!("{}@{domain}", self.local_part()))
    }
}

impl ReversePath {
    /// [`Mailbox::to_ascii_domain`] of the mailbox; `<>` unchanged.
    pub fn to_ascii_domain(&self) -> Result<ReversePath, InvalidInput> {
        match self {
            ReversePath::Null => Ok(ReversePath::Null),
            ReversePath::Mailbox(m) => Ok(ReversePath::Mailbox(m.to_ascii_domain()?)),
        }
    }
}

impl ForwardPath {
    /// [`Mailbox::to_ascii_domain`] of the mailbox; `<Postmaster>` unchanged.
    pub fn to_ascii_domain(&self) -> Result<ForwardPath, InvalidInput> {
        match self.mailbox() {
            None => Ok(self.clone()),
            Some(m) => ForwardPath::new(m.to_ascii_domain()?.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3492_samples_as_a_labels() {
        // RFC 3492 7.1 (B), Chinese (simplified).
        let d = Domain::from_unicode("他们为什么不说中文.example").unwrap();
        assert_eq!(d.as_str(), "xn--ihqwcrb4cv8a8dqg056pqjye.example");
        // RFC 3492 7.1 (L), "3<nen>B<gumi><kinpachi><sensei>": IDNA maps B to b first.
        let d = Domain::from_unicode("3年B組金八先生.example").unwrap();
        assert_eq!(d.as_str(), "xn--3b-ww4c5e180e575a65lsy2b.example");
    }

    #[test]
    fn ascii_and_literals_are_kept() {
        assert_eq!(
            Domain::from_unicode("mx.example.test").unwrap().as_str(),
            "mx.example.test"
        );
        assert_eq!(
            Domain::from_unicode("[192.0.2.1]").unwrap().as_str(),
            "[192.0.2.1]"
        );
    }

    #[test]
    fn a_mailbox_gets_an_ascii_domain_only_with_an_ascii_local_part() {
        let m = Mailbox::new("alice@bücher.example").unwrap();
        assert_eq!(
            m.to_ascii_domain().unwrap().as_str(),
            "alice@xn--bcher-kva.example"
        );
        let f = ForwardPath::new("bob@bücher.example").unwrap();
        assert_eq!(
            f.to_ascii_domain().unwrap().to_string(),
            "<bob@xn--bcher-kva.example>"
        );
        let err = Mailbox::new("jörg@bücher.example")
            .unwrap()
            .to_ascii_domain()
            .unwrap_err();
        assert!(err.to_string().contains("non-ASCII local part"), "{err}");
        assert_eq!(
            ReversePath::Null.to_ascii_domain().unwrap(),
            ReversePath::Null
        );
    }

    #[test]
    fn a_label_starting_with_a_combining_mark_is_refused() {
        // RFC 5891 4.2.3.2: a label must not begin with a combining mark.
        let err = Domain::from_unicode("\u{301}a.example").unwrap_err();
        assert_eq!(err.what(), "international domain");
        let err = Mailbox::new("x@\u{301}a.example")
            .unwrap()
            .to_ascii_domain()
            .unwrap_err();
        assert_eq!(err.what(), "mailbox domain");
    }
}
