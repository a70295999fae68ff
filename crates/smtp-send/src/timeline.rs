//! How long each stage of the session took, from the transcript's lines and the moments
//! the client reports (connected, TLS up).
//!
//! Each line the client sends or receives is recorded with the time it was seen (its
//! text is not kept: only its stage and, for a reply line, its code). Replies come back in
//! the order of the commands (RFC 5321 4.1.1.4; PIPELINING keeps it, RFC 2920 3.1), so
//! each complete reply is paired with the oldest command still awaiting one. A stage's
//! time is then the union of the intervals from sending each of its commands to its reply:
//!
//! - `connect`: from the start of the run to the connection being up (name resolution,
//!   TCP, any proxy's handshake);
//! - `banner`: from then (or from the end of implicit TLS's handshake) to the greeting;
//! - `tls`: from STARTTLS to the end of the handshake, or implicit TLS's handshake;
//! - `ehlo`, `auth`, `mail`, `rcpt`, `data`, `rset`, `quit`: their commands; `auth` from
//!   AUTH to the final reply, `data` from DATA (or the first BDAT) to the reply to the end
//!   of the message, the message's transfer included; other commands under `other`.
//!
//! With PIPELINING, MAIL, RCPT and DATA go out together, so their intervals overlap and
//! their times can add up to more than the whole run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use smtp_client::Direction;

/// A stage of the session, as the JSON output names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Name resolution, TCP, any proxy's handshake.
    Connect,
    /// Waiting for the greeting.
    Banner,
    /// EHLO, HELO or LHLO.
    Ehlo,
    /// STARTTLS and the TLS handshake, or implicit TLS's handshake.
    Tls,
    /// The AUTH exchange.
    Auth,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA or BDAT, with the message.
    Data,
    /// RSET.
    Rset,
    /// QUIT.
    Quit,
    /// Any other command.
    Other,
}

impl Stage {
    /// Every stage, in the order the JSON output lists them.
    pub const ALL: [Stage; 11] = [
        Stage::Connect,
        Stage::Banner,
        Stage::Ehlo,
        Stage::Tls,
        Stage::Auth,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::Rset,
        Stage::Quit,
        Stage::Other,
    ];

    /// The stage's name in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Banner => "banner",
            Stage::Ehlo => "ehlo",
            Stage::Tls => "tls",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Rset => "rset",
            Stage::Quit => "quit",
            Stage::Other => "other",
        }
    }

    /// A stage whose steps run one after the other with the client's own work between
    /// them (an AUTH challenge answered, the message written after 354): its time runs
    /// on from one step to the next.
    fn continuous(self) -> bool {
        matches!(self, Stage::Auth | Stage::Data)
    }
}

/// One line, as far as timing goes.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// A command line (or a line of the message) that went out.
    Sent {
        at: Instant,
        stage: Stage,
        /// False for the message's own lines, which get no reply.
        awaits_reply: bool,
    },
    /// A reply line; `last` for the last line of a reply (`250 ` rather than `250-`).
    Reply {
        at: Instant,
        last: bool,
        negative: bool,
    },
    /// A line of a proxy's handshake, before the SMTP session.
    Proxy,
}

/// The stage of a line the client sent, from its verb (the line as the transcript shows
/// it: AUTH payloads are `****`, the message `[message data: N bytes]` and `.`).
fn sent_stage(line: &str) -> Option<(Stage, bool)> {
    if line.starts_with("[message data:") {
        return Some((Stage::Data, false));
    }
    if line == "." {
        return Some((Stage::Data, true));
    }
    if line == "****" {
        // An answer to an AUTH challenge, masked.
        return Some((Stage::Auth, true));
    }
    let verb = line.split([' ', ':']).next().unwrap_or("");
    let stage = match verb.to_ascii_uppercase().as_str() {
        // The proxy's handshake (SOCKS5, HTTP CONNECT): part of connecting.
        "SOCKS5" | "CONNECT" | "HOST" | "PROXY-AUTHORIZATION" => return None,
        "EHLO" | "HELO" | "LHLO" => Stage::Ehlo,
        "STARTTLS" => Stage::Tls,
        "AUTH" => Stage::Auth,
        "MAIL" => Stage::Mail,
        "RCPT" => Stage::Rcpt,
        "DATA" | "BDAT" => Stage::Data,
        "RSET" => Stage::Rset,
        "QUIT" => Stage::Quit,
        _ => Stage::Other,
    };
    Some((stage, true))
}

/// The lines of one session with the time each was seen. Cloning shares the record.
#[derive(Debug, Clone)]
pub struct Timeline {
    started: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

/// What the client reports beside its lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks {
    /// [`smtp_client::Client::connected_at`], when the connection opened.
    pub connected: Option<Instant>,
    /// [`smtp_client::Client::tls_established_at`].
    pub tls: Option<Instant>,
    /// TLS came first (implicit TLS), before the greeting.
    pub implicit_tls: bool,
}

/// Each stage's time, in [`Stage::ALL`]'s order, and the whole run's.
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    /// The stages that took place, with their time.
    pub stages: Vec<(Stage, Duration)>,
    /// From the start of the run to its end.
    pub total: Duration,
}

impl Timeline {
    /// An empty record of a run that started at `started`.
    pub fn new(started: Instant) -> Timeline {
        Timeline {
            started,
            events: Arc::default(),
        }
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records a transcript line, seen now.
    pub fn record(&self, direction: Direction, line: &str) {
        self.record_at(Instant::now(), direction, line);
    }

    fn record_at(&self, at: Instant, direction: Direction, line: &str) {
        let event = match direction {
            Direction::Sent => match sent_stage(line) {
                Some((stage, awaits_reply)) => Event::Sent {
                    at,
                    stage,
                    awaits_reply,
                },
                None => Event::Proxy,
            },
            Direction::Received => {
                let b = line.as_bytes();
                if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
                    Event::Reply {
                        at,
                        last: b.get(3) != Some(&b'-'),
                        negative: matches!(b[0], b'4' | b'5'),
                    }
                } else {
                    Event::Proxy
                }
            }
        };
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Each stage's time, for a run that ended at `end`.
    pub fn timings(&self, marks: Marks, end: Instant) -> Timings {
        let replay = Replay::run(self.started, &self.events(), marks, end);
        let stages = Stage::ALL
            .iter()
            .filter_map(|&stage| {
                let spans: Vec<(Instant, Instant)> = replay
                    .spans
                    .iter()
                    .filter(|(s, _, _)| *s == stage)
                    .map(|&(_, a, b)| (a, b))
                    .collect();
                (!spans.is_empty()).then(|| (stage, union_length(spans)))
            })
            .collect();
        Timings {
            stages,
            total: end.saturating_duration_since(self.started),
        }
    }

    /// The stage a failed run stopped in, when the lines tell: the oldest command still
    /// awaiting its reply, else the last one refused, else a TLS handshake that did not
    /// finish after STARTTLS. `None` when no SMTP line was seen (the caller knows from
    /// the error whether connecting or implicit TLS failed).
    pub fn failed_stage(&self, marks: Marks, end: Instant) -> Option<Stage> {
        let replay = Replay::run(self.started, &self.events(), marks, end);
        if !replay.smtp_seen {
            return None;
        }
        replay
            .unanswered
            .iter()
            .map(|&(stage, _)| stage)
            .find(|s| !matches!(s, Stage::Quit | Stage::Rset))
            .or(replay.last_refused)
            .or(replay.handshake_unfinished.then_some(Stage::Tls))
    }
}

/// The events replayed: the interval of each stage's commands.
struct Replay {
    spans: Vec<(Stage, Instant, Instant)>,
    unanswered: VecDeque<(Stage, Instant)>,
    last_refused: Option<Stage>,
    handshake_unfinished: bool,
    smtp_seen: bool,
}

impl Replay {
    fn run(started: Instant, events: &[Event], marks: Marks, end: Instant) -> Replay {
        let first_smtp = events.iter().find_map(|e| match e {
            Event::Sent { at, .. } | Event::Reply { at, .. } => Some(*at),
            Event::Proxy => None,
        });
        let mut r = Replay {
            spans: Vec::new(),
            unanswered: VecDeque::new(),
            last_refused: None,
            handshake_unfinished: false,
            smtp_seen: first_smtp.is_some(),
        };
        // Without the client's mark (it failed while opening), the first SMTP line stands
        // for the connection being up.
        let connected = marks.connected.or(first_smtp);
        r.spans
            .push((Stage::Connect, started, connected.unwrap_or(end)));
        let Some(connected) = connected else {
            return r;
        };
        let mut banner_from = connected;
        if marks.implicit_tls {
            let tls_end = marks.tls.unwrap_or(end);
            r.spans.push((Stage::Tls, connected, tls_end));
            banner_from = tls_end;
        }
        r.unanswered.push_back((Stage::Banner, banner_from));
        // Where a continuous stage's time runs on from.
        let mut run_on: Option<(Stage, Instant)> = None;
        let mut starttls_answered: Option<Instant> = None;
        for event in events {
            match *event {
                Event::Proxy => {}
                Event::Sent {
                    at,
                    stage,
                    awaits_reply,
                } => {
                    let from = match run_on {
                        Some((s, t)) if s == stage => t,
                        _ => at,
                    };
                    run_on = stage.continuous().then_some((stage, at));
                    if awaits_reply {
                        r.unanswered.push_back((stage, from));
                    } else {
                        r.spans.push((stage, from, at));
                    }
                }
                Event::Reply { at, last, negative } => {
                    if !last {
                        continue;
                    }
                    // A reply no command awaits (PRDR's replies per recipient, LMTP's):
                    // part of the data stage they follow.
                    let (stage, from) = r.unanswered.pop_front().unwrap_or((Stage::Data, at));
                    r.spans.push((stage, from, at));
                    if stage.continuous() {
                        run_on = Some((stage, at));
                    }
                    if negative {
                        r.last_refused = Some(stage);
                    } else if stage == Stage::Tls && !marks.implicit_tls {
                        starttls_answered = Some(at);
                    }
                }
            }
        }
        if let Some(answered) = starttls_answered {
            match marks.tls {
                Some(done) if done >= answered => r.spans.push((Stage::Tls, answered, done)),
                _ => {
                    r.spans.push((Stage::Tls, answered, end));
                    r.handshake_unfinished = true;
                }
            }
        }
        for &(stage, from) in &r.unanswered {
            r.spans.push((stage, from, end));
        }
        r
    }
}

/// The length of the union of `spans`.
fn union_length(mut spans: Vec<(Instant, Instant)>) -> Duration {
    spans.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (a, b) in spans {
        let b = b.max(a);
        current = match current {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((a, b)) = current {
        total += b - a;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A timeline fed lines at given milliseconds after its start.
    fn timeline(lines: &[(u64, Direction, &str)]) -> (Timeline, Instant) {
        let t0 = Instant::now();
        let tl = Timeline::new(t0);
        for &(ms, d, line) in lines {
            tl.record_at(t0 + MS * ms as u32, d, line);
        }
        (tl, t0)
    }

    use Direction::{Received as R, Sent as S};

    fn stage(t: &Timings, s: Stage) -> Option<Duration> {
        t.stages.iter().find(|(x, _)| *x == s).map(|&(_, d)| d)
    }

    #[test]
    fn a_pipelined_session_with_starttls_and_auth() {
        let (tl, t0) = timeline(&[
            (10, R, "220 mx.example.test ESMTP"),
            (11, S, "EHLO client.example.test"),
            (13, R, "250-mx.example.test"),
            (13, R, "250 STARTTLS"),
            (14, S, "STARTTLS"),
            (15, R, "220 2.0.0 Ready"),
            // handshake until 25
            (25, S, "EHLO client.example.test"),
            (27, R, "250-mx.example.test"),
            (27, R, "250 AUTH PLAIN"),
            (28, S, "AUTH PLAIN ****"),
            (31, R, "235 2.7.0 ok"),
            (32, S, "MAIL FROM:<a@example.test>"),
            (32, S, "RCPT TO:<b@example.test>"),
            (32, S, "RCPT TO:<c@example.test>"),
            (32, S, "DATA"),
            (34, R, "250 2.1.0 Ok"),
            (35, R, "250 2.1.5 Ok"),
            (36, R, "550 5.1.1 no"),
            (37, R, "354 go"),
            (38, S, "[message data: 100 bytes]"),
            (40, S, "."),
            (45, R, "250 2.0.0 queued"),
            (46, S, "QUIT"),
            (47, R, "221 bye"),
        ]);
        let marks = Marks {
            connected: Some(t0 + 2 * MS),
            tls: Some(t0 + 25 * MS),
            implicit_tls: false,
        };
        let t = tl.timings(marks, t0 + 48 * MS);
        assert_eq!(stage(&t, Stage::Connect), Some(2 * MS));
        assert_eq!(stage(&t, Stage::Banner), Some(8 * MS));
        // Two EHLOs: 11..13 and 25..27.
        assert_eq!(stage(&t, Stage::Ehlo), Some(4 * MS));
        // STARTTLS sent at 14, handshake done at 25.
        assert_eq!(stage(&t, Stage::Tls), Some(11 * MS));
        assert_eq!(stage(&t, Stage::Auth), Some(3 * MS));
        assert_eq!(stage(&t, Stage::Mail), Some(2 * MS));
        // Both RCPTs: 32..35 and 32..36.
        assert_eq!(stage(&t, Stage::Rcpt), Some(4 * MS));
        // DATA at 32 to the final reply at 45, the message's transfer included.
        assert_eq!(stage(&t, Stage::Data), Some(13 * MS));
        assert_eq!(stage(&t, Stage::Quit), Some(MS));
        assert_eq!(t.total, 48 * MS);
        let names: Vec<&str> = t.stages.iter().map(|(s, _)| s.name()).collect();
        assert_eq!(
            names,
            ["connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt", "data", "quit"]
        );
        // The last refusal was a recipient's, but nothing is pending: the run did not
        // stop in a stage.
        assert_eq!(tl.failed_stage(marks, t0 + 48 * MS), Some(Stage::Rcpt));
    }

    #[test]
    fn a_refused_auth_is_the_failed_stage() {
        let (tl, t0) = timeline(&[
            (1, R, "220 ready"),
            (2, S, "EHLO c"),
            (3, R, "250 AUTH LOGIN"),
            (4, S, "AUTH LOGIN"),
            (5, R, "334 VXNlcm5hbWU6"),
            (6, S, "****"),
            (7, R, "334 UGFzc3dvcmQ6"),
            (8, S, "****"),
            (12, R, "535 5.7.8 no"),
        ]);
        let marks = Marks {
            connected: Some(t0),
            ..Marks::default()
        };
        let end = t0 + 13 * MS;
        assert_eq!(tl.failed_stage(marks, end), Some(Stage::Auth));
        // AUTH from 4 to the final reply at 12, continuously.
        assert_eq!(stage(&tl.timings(marks, end), Stage::Auth), Some(8 * MS));
    }

    #[test]
    fn a_command_without_its_reply_is_the_failed_stage() {
        let (tl, t0) = timeline(&[
            (1, R, "220 ready"),
            (2, S, "EHLO c"),
            (3, R, "250 ok"),
            (4, S, "MAIL FROM:<a@b.c>"),
            (4, S, "RCPT TO:<d@e.f>"),
        ]);
        let marks = Marks {
            connected: Some(t0),
            ..Marks::default()
        };
        let end = t0 + 30 * MS;
        assert_eq!(tl.failed_stage(marks, end), Some(Stage::Mail));
        assert_eq!(stage(&tl.timings(marks, end), Stage::Mail), Some(26 * MS));
    }

    #[test]
    fn a_handshake_that_fails_after_starttls_is_the_tls_stage() {
        let (tl, t0) = timeline(&[
            (1, R, "220 ready"),
            (2, S, "EHLO c"),
            (3, R, "250 STARTTLS"),
            (4, S, "STARTTLS"),
            (5, R, "220 go ahead"),
        ]);
        let end = t0 + 9 * MS;
        assert_eq!(tl.failed_stage(Marks::default(), end), Some(Stage::Tls));
        let t = tl.timings(Marks::default(), end);
        // No connected mark: the first line stands for it.
        assert_eq!(stage(&t, Stage::Connect), Some(MS));
        assert_eq!(stage(&t, Stage::Tls), Some(5 * MS));
    }

    #[test]
    fn nothing_seen_leaves_the_stage_to_the_caller() {
        let (tl, t0) = timeline(&[
            (1, S, "SOCKS5 methods: no authentication"),
            (2, R, "SOCKS5 method: no authentication"),
        ]);
        let end = t0 + 5 * MS;
        assert_eq!(tl.failed_stage(Marks::default(), end), None);
        let t = tl.timings(Marks::default(), end);
        assert_eq!(t.stages, [(Stage::Connect, 5 * MS)]);
    }

    #[test]
    fn implicit_tls_comes_before_the_banner() {
        let (tl, t0) = timeline(&[(7, R, "220 ready"), (8, S, "QUIT"), (9, R, "221 bye")]);
        let marks = Marks {
            connected: Some(t0 + MS),
            tls: Some(t0 + 5 * MS),
            implicit_tls: true,
        };
        let t = tl.timings(marks, t0 + 10 * MS);
        assert_eq!(stage(&t, Stage::Connect), Some(MS));
        assert_eq!(stage(&t, Stage::Tls), Some(4 * MS));
        assert_eq!(stage(&t, Stage::Banner), Some(2 * MS));
    }

    #[test]
    fn unions_merge_overlaps() {
        let t0 = Instant::now();
        let at = |ms: u32| t0 + MS * ms;
        assert_eq!(
            union_length(vec![(at(0), at(5)), (at(3), at(8)), (at(10), at(11))]),
            9 * MS
        );
        assert_eq!(union_length(vec![(at(4), at(2))]), Duration::ZERO);
    }
}
