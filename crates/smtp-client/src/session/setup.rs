//! Greeting, EHLO (HELO when EHLO is refused), STARTTLS and the EHLO after it: `open`,
//! `hello` and `starttls`. Under LMTP, LHLO takes EHLO's place and a refusal is final.
//!
//! ```text
//!  open ──▶ Greeting ──220──▶ Ehlo ──250──▶ StartTls ──220──▶ Handshake ──▶ Ehlo (after TLS) ──▶ done
//!                              │ 5xx                 │ refused (opportunistic)
//!                              ▼                     ▼
//!                             Helo ──250──▶ done     done, in clear
//! ```

use std::time::Instant;

use smtp_proto::{Capabilities, Command, Domain, Reply, ReplyCode, Xclient};

use super::config::Protocol;
use super::core::{AuthState, Core, Wait};
use super::owed::{Awaits, Label, Owed};
use super::phase::Phase;
use super::Outcome;
use crate::error::{Error, ProtocolError, TlsUnavailable};

/// What the caller asked of this setup.
#[derive(Debug)]
struct Plan {
    /// Send EHLO after the greeting.
    hello: bool,
    /// Try STARTTLS after EHLO, per the policy.
    starttls: bool,
    /// A refusal of STARTTLS is an error even under the opportunistic policy (explicit call).
    starttls_explicit: bool,
    domain: Domain,
}

/// The one reply a setup step waits for.
#[derive(Debug, Clone, Copy)]
enum Awaited {
    Greeting,
    Ehlo {
        after_tls: bool,
    },
    Helo,
    StartTls,
    /// Postfix's XCLIENT: a new 220 greeting, then EHLO again.
    Xclient,
}

#[derive(Debug)]
enum Step {
    Awaiting(Owed<Awaited>),
    /// STARTTLS was accepted: the driver runs the TLS handshake, nothing is read in clear.
    Handshake,
}

/// The setup phase.
#[derive(Debug)]
pub(super) struct Setup {
    plan: Plan,
    step: Step,
}

impl Setup {
    /// Waits for the greeting; then EHLO and STARTTLS unless `send_hello` is off.
    pub(super) fn open(core: &Core, now: Instant) -> Setup {
        let mut owed = Owed::default();
        let timeout = core.config.timeouts.greeting;
        owed.push(Awaited::Greeting, Label::Greeting, timeout, now);
        Setup {
            plan: Plan {
                hello: core.config.send_hello,
                starttls: core.config.send_hello,
                starttls_explicit: false,
                domain: core.config.client_id.clone(),
            },
            step: Step::Awaiting(owed),
        }
    }

    /// Sends EHLO with `domain`.
    pub(super) fn hello(core: &mut Core, domain: Domain, now: Instant) -> Phase {
        let plan = Plan {
            hello: true,
            starttls: false,
            starttls_explicit: false,
            domain,
        };
        Setup::before(plan).send(core, Next::Ehlo, now)
    }

    /// Sends STARTTLS.
    pub(super) fn starttls(core: &mut Core, now: Instant) -> Phase {
        let plan = Plan {
            hello: true,
            starttls: true,
            starttls_explicit: true,
            domain: core.config.client_id.clone(),
        };
        Setup::before(plan).send(core, Next::StartTls, now)
    }

    /// Sends XCLIENT; its 220 is followed by EHLO.
    pub(super) fn xclient(core: &mut Core, attrs: &Xclient, now: Instant) -> Phase {
        let plan = Plan {
            hello: true,
            starttls: false,
            starttls_explicit: false,
            domain: core.config.client_id.clone(),
        };
        let mut owed = Owed::default();
        let command = Command::Xclient(attrs);
        match core.request(&mut owed, &command, Awaited::Xclient, Wait::Command, now) {
            Ok(()) => Phase::Setup(Setup {
                plan,
                step: Step::Awaiting(owed),
            }),
            Err(e) => Phase::failed(e),
        }
    }

    /// A setup that has sent nothing yet.
    fn before(plan: Plan) -> Setup {
        Setup {
            plan,
            step: Step::Awaiting(Owed::default()),
        }
    }

    pub(super) fn owed(&self) -> Option<&dyn Awaits> {
        match &self.step {
            Step::Awaiting(owed) => Some(owed),
            Step::Handshake => None,
        }
    }

    pub(super) fn is_handshaking(&self) -> bool {
        matches!(self.step, Step::Handshake)
    }

    /// The TLS handshake succeeded: everything learnt in clear is forgotten, EHLO again.
    pub(super) fn tls_established(self, core: &mut Core, now: Instant) -> Phase {
        core.encrypted = true;
        core.forget_capabilities();
        core.parser.clear();
        self.send(core, Next::EhloAfterTls, now)
    }

    pub(super) fn on_reply(mut self, reply: Reply, core: &mut Core, now: Instant) -> Phase {
        let Step::Awaiting(owed) = &mut self.step else {
            return Phase::unsolicited(reply);
        };
        let Some(awaited) = owed.pop(now) else {
            return Phase::unsolicited(reply);
        };
        let code = reply.code();
        match awaited.what {
            Awaited::Greeting => {
                if code != ReplyCode::SERVICE_READY {
                    // 554: no service here; anything else is not a greeting.
                    return Phase::broken(awaited.label.refused(reply));
                }
                core.banner = Some(reply.clone());
                if !self.plan.hello {
                    return Phase::done(Outcome::Reply(reply));
                }
                self.send(core, Next::Ehlo, now)
            }
            Awaited::Ehlo { after_tls } => {
                if reply.is_positive_completion() {
                    core.caps = Some(Capabilities::from_ehlo(&reply));
                    core.auth = AuthState::None;
                    let want_tls = self.plan.starttls
                        && !after_tls
                        && !core.encrypted
                        && core.config.starttls_wanted();
                    if want_tls {
                        if core.has(Capabilities::starttls) {
                            return self.send(core, Next::StartTls, now);
                        }
                        if core.config.starttls_required() {
                            return Phase::broken(Error::TlsRequired(TlsUnavailable::NotOffered));
                        }
                    }
                    return Phase::done(Outcome::Reply(reply));
                }
                if reply.is_permanent_negative() && core.config.protocol == Protocol::Smtp {
                    if core.config.starttls_required() && !core.encrypted {
                        // HELO cannot lead to STARTTLS.
                        return Phase::broken(Error::TlsRequired(TlsUnavailable::NotOffered));
                    }
                    return self.send(core, Next::Helo, now);
                }
                Phase::failed(awaited.label.refused(reply))
            }
            Awaited::Helo => {
                if reply.is_positive_completion() {
                    core.forget_capabilities();
                    Phase::done(Outcome::Reply(reply))
                } else {
                    Phase::failed(awaited.label.refused(reply))
                }
            }
            Awaited::Xclient => {
                if code != ReplyCode::SERVICE_READY {
                    // 501 (bad attribute), 550 (not authorised), 503 (in a transaction):
                    // the session goes on as before.
                    return Phase::failed(awaited.label.refused(reply));
                }
                // The server starts over as if the forwarded client had connected: what it
                // said of itself before no longer holds.
                core.banner = Some(reply);
                core.forget_capabilities();
                self.send(core, Next::Ehlo, now)
            }
            Awaited::StartTls => {
                if code == ReplyCode::SERVICE_READY {
                    let extra = core.parser.buffered_len();
                    if extra > 0 {
                        // RFC 3207 6 / CVE-2011-0411: these bytes came in clear and must
                        // never be read as a reply after the upgrade.
                        core.parser.clear();
                        return Phase::broken(Error::Protocol(
                            ProtocolError::BytesBeforeTlsHandshake(extra),
                        ));
                    }
                    self.step = Step::Handshake;
                    return Phase::Setup(self);
                }
                if core.config.starttls_required() {
                    return Phase::broken(Error::TlsRequired(TlsUnavailable::Refused(reply)));
                }
                if self.plan.starttls_explicit {
                    return Phase::failed(awaited.label.refused(reply));
                }
                // Opportunistic: carry on in clear with what EHLO said.
                Phase::done(Outcome::Reply(reply))
            }
        }
    }

    /// Sends the next command of the setup and waits for its reply.
    fn send(mut self, core: &mut Core, next: Next, now: Instant) -> Phase {
        let domain = &self.plan.domain;
        // RFC 2033 4.1: LMTP has LHLO where SMTP has EHLO, and no HELO.
        let ehlo = match core.config.protocol {
            Protocol::Smtp => Command::Ehlo(domain),
            Protocol::Lmtp => Command::Lhlo(domain),
        };
        let (command, awaited) = match next {
            Next::Ehlo => (ehlo, Awaited::Ehlo { after_tls: false }),
            Next::EhloAfterTls => (ehlo, Awaited::Ehlo { after_tls: true }),
            Next::Helo => (Command::Helo(domain), Awaited::Helo),
            Next::StartTls => (Command::StartTls, Awaited::StartTls),
        };
        let mut owed = Owed::default();
        match core.request(&mut owed, &command, awaited, Wait::Command, now) {
            Ok(()) => {
                self.step = Step::Awaiting(owed);
                Phase::Setup(self)
            }
            Err(e) => Phase::failed(e),
        }
    }
}

/// The commands a setup sends after the greeting.
#[derive(Debug, Clone, Copy)]
enum Next {
    Ehlo,
    EhloAfterTls,
    Helo,
    StartTls,
}
