//! `--transcript` on stderr: the client's lines, the server's lines and the masked lines
//! (AUTH payloads, a proxy's password) each in their own colour on a terminal, plain text
//! when stderr is piped or `NO_COLOR` is set (`CLICOLOR_FORCE=1` forces colour; `NO_COLOR`
//! wins over it), as `anstream` decides. `--transcript-time` puts the seconds since the
//! start of the run before each line.
//!
//! The lines are the client's own transcript, where secrets are already masked (`****`);
//! nothing here can unmask them.

use std::io::Write;
use std::time::Instant;

use anstream::AutoStream;
use anstyle::{AnsiColor, Style};
use smtp_client::Direction;

use crate::cli::Args;
use crate::timeline::Timeline;

/// What a run records and prints about itself besides its result.
#[derive(Debug, Clone)]
pub struct Observe {
    /// `--json`: the session's lines are recorded for the report.
    pub json: bool,
    /// `--transcript-time`.
    pub transcript_time: bool,
    /// The lines' times; its start is the start of the session (after the checks and
    /// any password prompt).
    pub timeline: Timeline,
}

impl Observe {
    /// From the command line, starting now.
    pub fn new(args: &Args) -> Observe {
        Observe {
            json: args.json,
            transcript_time: args.transcript_time,
            timeline: Timeline::new(Instant::now()),
        }
    }
}

/// Lines the client sent.
const SENT: Style = AnsiColor::Cyan.on_default();
/// Lines the client sent with a secret masked.
const MASKED: Style = AnsiColor::Magenta.on_default().bold();
/// Positive replies (2xx, 3xx) and a proxy's answers.
const POSITIVE: Style = AnsiColor::Green.on_default();
/// Transient negative replies (4xx).
const TRANSIENT: Style = AnsiColor::Yellow.on_default();
/// Permanent negative replies (5xx).
const PERMANENT: Style = AnsiColor::Red.on_default().bold();
/// The time before each line.
const TIME: Style = Style::new().dimmed();

/// True for a line the client masked: an AUTH continuation (`****`), an AUTH initial
/// response (`AUTH PLAIN ****`), a proxy's credentials (`... alice ****`).
pub fn is_masked(line: &str) -> bool {
    line == "****" || line.ends_with(" ****")
}

/// The style of a transcript line.
pub fn style(direction: Direction, line: &str) -> Style {
    match direction {
        Direction::Sent if is_masked(line) => MASKED,
        Direction::Sent => SENT,
        Direction::Received => match line.as_bytes().first() {
            Some(b'4') => TRANSIENT,
            Some(b'5') => PERMANENT,
            _ => POSITIVE,
        },
    }
}

/// Writes transcript lines to stderr.
pub struct Printer {
    out: AutoStream<std::io::Stderr>,
    /// With `--transcript-time`: the start of the run.
    since: Option<Instant>,
}

impl Printer {
    /// A printer to stderr, colouring when stderr takes it; with `since`, each line gets
    /// the seconds since then.
    pub fn new(since: Option<Instant>) -> Printer {
        Printer {
            out: AutoStream::auto(std::io::stderr()),
            since,
        }
    }

    /// Prints one line, as `>>> EHLO ...` or `<<< 250 ...`.
    pub fn line(&mut self, direction: Direction, line: &str) {
        let text = format_line(
            self.since.map(|s| s.elapsed().as_secs_f64()),
            direction,
            line,
        );
        // A transcript that cannot be written is not a reason to stop sending.
        let _ = self.out.write_all(text.as_bytes());
    }
}

/// The line as printed, styles included (the stream strips them when it must).
fn format_line(seconds: Option<f64>, direction: Direction, line: &str) -> String {
    let style = style(direction, line);
    let time = match seconds {
        Some(s) => format!("{TIME}[{s:>8.3}s]{TIME:#} "),
        None => String::new(),
    };
    format!("{time}{style}{direction} {line}{style:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_lines_are_told_apart() {
        assert!(is_masked("****"));
        assert!(is_masked("AUTH PLAIN ****"));
        assert!(is_masked("SOCKS5 username/password: alice ****"));
        assert!(!is_masked("AUTH LOGIN"));
        assert!(!is_masked("MAIL FROM:<a****@example.test>"));
        assert_eq!(style(Direction::Sent, "AUTH PLAIN ****"), MASKED);
        assert_eq!(style(Direction::Sent, "EHLO x"), SENT);
        assert_eq!(style(Direction::Received, "250 ok"), POSITIVE);
        assert_eq!(style(Direction::Received, "354 go"), POSITIVE);
        assert_eq!(style(Direction::Received, "451 later"), TRANSIENT);
        assert_eq!(style(Direction::Received, "535 no"), PERMANENT);
        assert_ne!(SENT, POSITIVE);
        assert_ne!(SENT, MASKED);
    }

    #[test]
    fn lines_carry_their_style_and_time() {
        assert_eq!(
            format_line(None, Direction::Sent, "QUIT"),
            "\u{1b}[36m>>> QUIT\u{1b}[0m\n"
        );
        let timed = format_line(Some(1.5), Direction::Received, "221 bye");
        assert_eq!(
            timed,
            "\u{1b}[2m[   1.500s]\u{1b}[0m \u{1b}[32m<<< 221 bye\u{1b}[0m\n"
        );
    }
}
