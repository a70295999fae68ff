//! Net::SMTP's methods, written once for both drivers.
//!
//! Each method starts an operation on the session and hands it to the driver's `op` (which
//! moves the bytes); the blocking client gets plain methods, the async client the same
//! methods as `async fn`. Invoked inside an `impl` block as
//! `net_smtp_methods!([] [])` or `net_smtp_methods!([async] [.await])`; the driver provides
//! `fn op(&mut self, start) -> Result<Outcome, Error>` (async for the async driver) and the
//! fields `session` and `peer`.

macro_rules! net_smtp_methods {
    ([$($async:tt)*] [$($await:tt)*]) => {
        $($async)* fn reply_op(
            &mut self,
            start: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
        ) -> Result<Reply, Error> {
            crate::driver::into_reply(self.op(start) $($await)* ?)
        }

        $($async)* fn simple(&mut self, command: &Command<'_>) -> Result<Reply, Error> {
            self.reply_op(|s, now| s.start_command(command, Expect::Completion, now)) $($await)*
        }

        /// The server's greeting (Net::SMTP's `banner`).
        pub fn banner(&self) -> Option<&Reply> {
            self.session.banner()
        }

        /// The server's name for itself, from the greeting (Net::SMTP's `domain`).
        pub fn domain(&self) -> Option<String> {
            self.session.greeting_domain()
        }

        /// Sends EHLO (falling back to HELO on a 5xx) with `domain` or the configured name
        /// (Net::SMTP's `hello`). Forgets earlier capabilities.
        pub $($async)* fn hello(&mut self, domain: Option<&Domain>) -> Result<Reply, Error> {
            self.reply_op(|s, now| s.start_hello(domain, now)) $($await)*
        }

        /// The capabilities of the last EHLO reply (`None` after HELO).
        pub fn capabilities(&self) -> Option<&Capabilities> {
            self.session.capabilities()
        }

        /// True when the last EHLO reply offered `keyword` (Net::SMTP's `supports`).
        pub fn supports(&self, keyword: &str) -> bool {
            self.session.supports(keyword)
        }

        /// Upgrades the connection with STARTTLS, then sends EHLO again, forgetting everything
        /// learnt in clear (Net::SMTP's `starttls`). Returns the new EHLO reply.
        pub $($async)* fn starttls(&mut self) -> Result<Reply, Error> {
            self.reply_op(|s, now| s.start_starttls(now)) $($await)*
        }

        /// True when the connection is protected by TLS.
        pub fn is_encrypted(&self) -> bool {
            self.session.is_encrypted()
        }

        /// Sends `MAIL FROM` (Net::SMTP's `mail`/`send`); a non-2xx reply is [`Error::Refused`].
        pub $($async)* fn mail(&mut self, from: &ReversePath, params: &MailParams) -> Result<Reply, Error> {
            self.simple(&Command::Mail { from, params }) $($await)*
        }

        /// Sends one `RCPT TO` (Net::SMTP's `to`/`recipient` without SkipBad).
        pub $($async)* fn rcpt(&mut self, to: &ForwardPath, params: &RcptParams) -> Result<Reply, Error> {
            self.simple(&Command::Rcpt { to, params }) $($await)*
        }

        /// Sends `RCPT TO` for each recipient, pipelined when offered, with Net::SMTP's SkipBad
        /// semantics: refused recipients are reported and the good ones kept; an error only when
        /// all are refused.
        pub $($async)* fn recipients(
            &mut self,
            recipients: &[(ForwardPath, RcptParams)],
        ) -> Result<RecipientsReport, Error> {
            crate::driver::into_recipients(
                self.op(|s, now| s.start_recipients(recipients, now)) $($await)* ?,
            )
        }

        /// Sends DATA and waits for 354 (Net::SMTP's `data` without arguments).
        pub $($async)* fn data(&mut self) -> Result<Reply, Error> {
            self.reply_op(|s, now| s.start_data(now)) $($await)*
        }

        /// Ends the message with `.` and waits for the reply (Net::SMTP's `dataend`).
        pub $($async)* fn dataend(&mut self) -> Result<Reply, Error> {
            self.reply_op(|s, now| s.start_data_end(now)) $($await)*
        }

        /// Sends one `BDAT` chunk (RFC 3030; Net::SMTP's `bdat`).
        pub $($async)* fn bdat(&mut self, chunk: &[u8]) -> Result<Reply, Error> {
            self.reply_op(|s, now| s.start_bdat(chunk, false, now)) $($await)*
        }

        /// Sends the last `BDAT ... LAST` chunk (Net::SMTP's `bdatlast`).
        pub $($async)* fn bdat_last(&mut self, chunk: &[u8]) -> Result<Reply, Error> {
            self.reply_op(|s, now| s.start_bdat(chunk, true, now)) $($await)*
        }

        /// Sends RSET (Net::SMTP's `reset`).
        pub $($async)* fn reset(&mut self) -> Result<Reply, Error> {
            self.simple(&Command::Rset) $($await)*
        }

        /// Sends VRFY (Net::SMTP's `verify`). Servers often answer 252: the reply is returned
        /// whatever its code.
        pub $($async)* fn verify(&mut self, address: &Text) -> Result<Reply, Error> {
            self.command(&Command::Vrfy(address)) $($await)*
        }

        /// Sends EXPN (Net::SMTP's `expand`); the reply is returned whatever its code.
        pub $($async)* fn expand(&mut self, list: &Text) -> Result<Reply, Error> {
            self.command(&Command::Expn(list)) $($await)*
        }

        /// Sends HELP (Net::SMTP's `help`); the reply is returned whatever its code.
        pub $($async)* fn help(&mut self, topic: Option<&Text>) -> Result<Reply, Error> {
            self.command(&Command::Help(topic)) $($await)*
        }

        /// Sends NOOP (Net::SMTP's `noop`).
        pub $($async)* fn noop(&mut self) -> Result<Reply, Error> {
            self.simple(&Command::Noop) $($await)*
        }

        /// Sends ETRN (RFC 1985; Net::SMTP's `etrn`).
        pub $($async)* fn etrn(&mut self, node: &Text) -> Result<Reply, Error> {
            self.simple(&Command::Etrn(node)) $($await)*
        }

        /// SEND FROM (RFC 821): obsolete, always [`Error::Unsupported`].
        pub $($async)* fn send_to_terminal(&mut self) -> Result<Reply, Error> {
            Err(Error::Unsupported("SEND"))
        }

        /// SOML FROM (RFC 821): obsolete, always [`Error::Unsupported`].
        pub $($async)* fn send_or_mail(&mut self) -> Result<Reply, Error> {
            Err(Error::Unsupported("SOML"))
        }

        /// SAML FROM (RFC 821): obsolete, always [`Error::Unsupported`].
        pub $($async)* fn send_and_mail(&mut self) -> Result<Reply, Error> {
            Err(Error::Unsupported("SAML"))
        }

        // ----- Low-level hooks (Net::Cmd) ----------------------------------------------

        /// Sends one command line and returns the server's reply whatever its code (Net::Cmd's
        /// `command` + `response`). Secret commands (AUTH payloads) are masked in the
        /// transcript and in errors. EHLO, HELO and STARTTLS must go through
        /// [`hello`](Self::hello) and [`starttls`](Self::starttls).
        pub $($async)* fn command(&mut self, command: &Command<'_>) -> Result<Reply, Error> {
            self.reply_op(|s, now| s.start_command(command, Expect::AnyReply, now)) $($await)*
        }

        /// The last reply received (Net::Cmd's `code`, `message`, `ok`, `status` read it).
        pub fn last_reply(&self) -> Option<&Reply> {
            self.session.last_reply()
        }

        /// Records that the AUTH exchange which just got a 235 reply succeeded on the client's
        /// side too (see [`Session::confirm_authenticated`]); refused unless the last reply
        /// was a 235 to an AUTH line. EHLO and STARTTLS clear it.
        pub fn confirm_authenticated(&mut self) -> Result<(), Error> {
            self.session.confirm_authenticated()
        }

        /// True once an AUTH exchange succeeded, until EHLO or STARTTLS.
        pub fn is_authenticated(&self) -> bool {
            self.session.is_authenticated()
        }

        /// The sans-IO session (capabilities, state).
        pub fn session(&self) -> &Session {
            &self.session
        }

        /// The address connected to.
        pub fn peer_addr(&self) -> SocketAddr {
            self.peer
        }
    };
}

pub(crate) use net_smtp_methods;
