//! The command line: clap's view of it, and its check into a [`Plan`] before any connection.

use std::fs::File;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use sasl_mechs::{NtlmVersion, Secret};
use smtp_client::Proxy;
use smtp_proto::{Domain, ForwardPath, Mailbox, ReversePath};

use crate::composition::AttachTypes;
use crate::connection::{Link, ProtocolArg};
use crate::exit::Failure;
use crate::extensions::{Extensions, RetArg};
use crate::generate::Generate;
use crate::stage::Stage;
use crate::transcript::Observe;

/// The exit codes, as `--help` and the README give them.
pub const EXIT_CODES: &str = "\
Exit status:
  0  the message was accepted for every recipient
  1  any other failure (a bug, an unexpected local error)
  2  usage or bad input (refused before any connection)
  3  connection or TLS failure (including timeouts, a server that hangs up, a proxy that
     refuses or fails)
  4  authentication failed (wrong credentials, no usable mechanism)
  5  refused by the server (MAIL, any RCPT, DATA, or the greeting), also when the message
     reached some recipients but not all: a recipient refused at RCPT or, under
     --protocol lmtp or --prdr, by its own reply after the data; stderr names each one, and
     stdout lists each recipient's reply after the data

With --quit-after STAGE the status is 0 when every stage up to STAGE went well, else the
code of the failure above.

The password is never a flag: give --password-env VAR or --password-file FILE, or type it at
the prompt (no echo) when stdin is a terminal. The same for a proxy's: --proxy-password-env VAR.
--auth GSSAPI (Kerberos, in builds with the gssapi feature) takes no password: it uses the
ticket cache that kinit filled (KRB5CCNAME), for --user's principal.";

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsArg {
    /// STARTTLS, required: nothing but EHLO/STARTTLS/QUIT goes out in clear.
    Starttls,
    /// TLS from the first byte (RFC 8314, port 465).
    Implicit,
    /// No TLS at all.
    None,
    /// STARTTLS when the server offers it, clear text otherwise (open to downgrade).
    Opportunistic,
}

/// Whether PIPELINING is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PipeliningArg {
    /// When the server offers it.
    Auto,
    /// Never: each command waits for its reply.
    Off,
}

/// Send one message through an SMTP server, with AUTH, from the shell.
#[derive(Debug, Clone, Parser)]
#[command(name = "smtp-send", version, after_help = EXIT_CODES)]
pub struct Args {
    /// The server: HOST or HOST:PORT (an IPv6 address in brackets before a port). Default
    /// port: 25, 465 with --tls implicit, 587 with --submission.
    #[arg(long, value_name = "HOST[:PORT]", required_unless_present_any = ["demo", "socket"])]
    pub server: Option<String>,

    /// Use the submission port 587 by default (RFC 6409).
    #[arg(long)]
    pub submission: bool,

    /// TLS mode. `starttls` (the default; `none` over --socket) means STARTTLS is
    /// required.
    #[arg(long, value_enum)]
    pub tls: Option<TlsArg>,

    /// Also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Check the server certificate against this name instead of the host given.
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// SASL mechanism (PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5, SCRAM-SHA-1, SCRAM-SHA-256, NTLM,
    /// XOAUTH2, OAUTHBEARER, GSSAPI, ...), or `auto`: the strongest the server offers. For
    /// XOAUTH2 and OAUTHBEARER the password is the bearer token; GSSAPI takes none (the
    /// Kerberos ticket of `kinit`). Without --auth and --user, no AUTH.
    #[arg(long, value_name = "MECH|auto")]
    pub auth: Option<String>,

    /// NTLM version (some servers accept only v1).
    #[arg(long, value_name = "1|2", default_value = "2", value_parser = ["1", "2"])]
    pub ntlm_version: String,

    /// The user to authenticate as (implies --auth auto).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Act as this identity (SASL authorization id), when the server allows it.
    #[arg(long, value_name = "ID")]
    pub authzid: Option<String>,

    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,

    /// Read the password from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Allow mechanisms that send the password in clear (PLAIN, LOGIN) without TLS.
    #[arg(long)]
    pub allow_plaintext_auth: bool,

    /// Envelope sender (MAIL FROM); `<>` or an empty string for the null sender.
    #[arg(long, value_name = "ADDR", required_unless_present = "demo")]
    pub from: Option<String>,

    /// Envelope recipient (RCPT TO); repeat for several.
    #[arg(long, value_name = "ADDR", required_unless_present = "demo")]
    pub to: Vec<String>,

    /// The message (RFC 5322) from a file, or `-` for stdin. Without it, a generated test
    /// message with Date and Message-ID.
    #[arg(long, value_name = "FILE|-")]
    pub data: Option<String>,

    /// Subject of the generated test message.
    #[arg(long, value_name = "TEXT", conflicts_with = "data")]
    pub subject: Option<String>,

    /// Send the body with BDAT (CHUNKING) when the server offers it.
    #[arg(long)]
    pub bdat: bool,

    /// The name sent with EHLO (default: this host's name, or its address literal).
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,

    /// Connect through this proxy: socks5://HOST:PORT (the proxy resolves the server's name)
    /// or http://HOST:PORT (HTTP CONNECT), with USER@ before HOST when it wants credentials.
    /// TLS and AUTH are unchanged: the certificate is checked against the server's name,
    /// never the proxy's.
    #[arg(long, value_name = "URL", conflicts_with = "demo")]
    pub proxy: Option<String>,

    /// Read the proxy's password from this environment variable (needs a USER@ in --proxy).
    #[arg(long, value_name = "VAR", requires = "proxy")]
    pub proxy_password_env: Option<String>,

    /// Seconds to wait for the connection, the proxy's handshake and each reply.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,

    /// Use PIPELINING when offered.
    #[arg(long, value_enum, default_value_t = PipeliningArg::Auto)]
    pub pipelining: PipeliningArg,

    /// Print the SMTP conversation to stderr, both directions (AUTH payloads masked).
    #[arg(long)]
    pub transcript: bool,

    /// Print nothing on success.
    #[arg(long, short, conflicts_with = "transcript")]
    pub quiet: bool,

    /// Load mode (as Postfix's smtp-source): send the message this many times, over
    /// --concurrency pooled connections, and print messages per second and how many ended
    /// accepted, refused, not sent and unknown.
    #[arg(long, value_name = "N", conflicts_with_all = ["demo", "transcript"])]
    pub count: Option<u64>,

    /// Connections at once in load mode.
    #[arg(long, value_name = "C", default_value_t = 1, requires = "count")]
    pub concurrency: usize,

    /// Start the built-in demo server on 127.0.0.1 and send through it (through each of its
    /// mechanisms unless --auth is given), printing what it received.
    #[arg(long, conflicts_with_all = ["server", "tls", "ca_file", "submission"])]
    pub demo: bool,

    /// Port of the demo server (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = smtp_demo_server::DEFAULT_PORT, requires = "demo")]
    pub demo_port: u16,

    /// A header of the composed message, "Name: value"; repeat for several. It takes the
    /// place of the generated header of the same name (Date, Message-ID, From, To,
    /// Subject), whatever its case; the others follow the generated ones, in order.
    #[arg(long, value_name = "NAME: VALUE")]
    pub header: Vec<String>,

    /// The text of the composed message, or @FILE for a file's (UTF-8). Without it, a
    /// one-line test text.
    #[arg(long, value_name = "TEXT|@FILE")]
    pub body: Option<String>,

    /// Attach this file; repeat for several. The message becomes multipart/mixed, the text
    /// first; each file's content type is guessed from its name unless an --attach-type
    /// comes before it.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,

    /// The content type (image/png, text/csv...) of the --attach files after it, up to the
    /// next --attach-type; `auto` goes back to guessing from the file name.
    #[arg(long, value_name = "TYPE|auto")]
    pub attach_type: Vec<String>,

    /// Print one JSON object on stdout: the server, TLS, AUTH, each recipient with its
    /// reply, the final reply, the stage and reply of a failure, milliseconds per stage
    /// (the README has the schema). Also on failure; the exit status is the same.
    #[arg(long, conflicts_with_all = ["count", "demo"])]
    pub json: bool,

    /// Put the seconds since the start before each transcript line (implies --transcript).
    #[arg(long, conflicts_with_all = ["quiet", "count"])]
    pub transcript_time: bool,

    /// Print this program's man page, or the completion script for a shell, and exit.
    #[arg(long, value_enum, value_name = "WHAT", exclusive = true)]
    pub generate: Option<Generate>,

    /// Which --attach-type applies to each --attach: from where they stand on the command
    /// line (filled in by `composition::parse_args`), not a flag of its own.
    #[arg(skip)]
    pub attach_types: AttachTypes,
    /// DSN (RFC 3461): when each recipient's server should send a delivery status
    /// notification: `never`, or any of `success`, `failure`, `delay` joined by commas.
    #[arg(
        long,
        value_name = "never|success,failure,delay",
        help_heading = "Envelope extensions"
    )]
    pub notify: Option<String>,

    /// DSN: what a notification carries back: the full message or only its headers.
    #[arg(long, value_enum, help_heading = "Envelope extensions")]
    pub ret: Option<RetArg>,

    /// DSN: an envelope id for notifications to quote (printable ASCII, at most 100).
    #[arg(long, value_name = "ID", help_heading = "Envelope extensions")]
    pub envid: Option<String>,

    /// DSN: the original recipient, as ADDR-TYPE;ADDRESS (rfc822;bob@example.test): one for
    /// each --to, in the same order.
    #[arg(long, value_name = "TYPE;ADDR", help_heading = "Envelope extensions")]
    pub orcpt: Vec<String>,

    /// Postfix XCLIENT: an attribute of the client this one speaks for (NAME, REVERSE_NAME,
    /// ADDR, PORT, PROTO, HELO, LOGIN, DESTADDR, DESTPORT; a value may be `[UNAVAILABLE]` or
    /// `[TEMPUNAVAIL]`); repeat for several. Sent after TLS, before AUTH; the server must
    /// offer each attribute.
    #[arg(long, value_name = "ATTR=VALUE", help_heading = "Envelope extensions")]
    pub xclient: Vec<String>,

    /// Ask for a reply per recipient after the data (PRDR, as Exim offers it).
    #[arg(long, help_heading = "Envelope extensions")]
    pub prdr: bool,

    /// SMTP, or LMTP (RFC 2033: LHLO, and a reply per recipient after the data).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Smtp, help_heading = "Connection")]
    pub protocol: ProtocolArg,

    /// Connect to this Unix-domain socket instead of --server (where LMTP servers usually
    /// listen). There is no TLS over it: --tls is `none` unless given otherwise, which is
    /// refused.
    #[arg(long, value_name = "PATH", help_heading = "Connection")]
    pub socket: Option<PathBuf>,

    /// Connect from this local address (and port): `IP`, `IP:PORT` or `[IPV6]:PORT`.
    #[arg(long, value_name = "IP[:PORT]", help_heading = "Connection")]
    pub local_addr: Option<String>,

    /// Connect over IPv4 only.
    #[arg(short = '4', long = "ipv4", help_heading = "Connection")]
    pub ipv4: bool,

    /// Connect over IPv6 only.
    #[arg(short = '6', long = "ipv6", help_heading = "Connection")]
    pub ipv6: bool,

    /// Present this client certificate (PEM; intermediates after it) when the server asks
    /// for one; with --tls-key. `--auth EXTERNAL` then authenticates as its identity.
    #[arg(long, value_name = "FILE", help_heading = "Connection")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", help_heading = "Connection")]
    pub tls_key: Option<PathBuf>,

    /// Stop after this stage, send QUIT, and exit 0 if every stage so far went well.
    #[arg(long, value_enum, value_name = "STAGE", help_heading = "Connection")]
    pub quit_after: Option<Stage>,
}

impl Args {
    /// The TLS mode in force: `--tls` as given, else none over a Unix socket (which has no
    /// TLS) and STARTTLS, required, everywhere else.
    pub fn tls_mode(&self) -> TlsArg {
        match (self.tls, &self.socket) {
            (Some(tls), _) => tls,
            (None, Some(_)) => TlsArg::None,
            (None, None) => TlsArg::Starttls,
        }
    }
}

/// Which SASL mechanism to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthChoice {
    /// The strongest one both sides support.
    Auto,
    /// This one (upper case).
    Mechanism(String),
}

/// Authentication, checked.
#[derive(Debug, Clone)]
pub struct AuthPlan {
    /// The mechanism.
    pub choice: AuthChoice,
    /// The user.
    pub user: String,
    /// The authorization id, if any.
    pub authzid: Option<String>,
    /// The password.
    pub password: Secret,
    /// NTLM version.
    pub ntlm_version: NtlmVersion,
    /// Whether PLAIN/LOGIN may go out without TLS.
    pub allow_plaintext: bool,
}

/// Where the message comes from.
#[derive(Debug)]
pub enum Body {
    /// A message composed from the flags (a test message without them).
    Generated(crate::composition::Composition),
    /// A file, opened (so a missing file fails before any connection), with its size.
    File(File, u64),
    /// Standard input.
    Stdin,
}

/// Everything the command line asked for, checked: no connection has been made.
#[derive(Debug)]
pub struct Plan {
    /// Host name or address (brackets removed).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// TLS mode.
    pub tls: TlsArg,
    /// `--submission`.
    pub submission: bool,
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--tls-server-name`.
    pub tls_server_name: Option<String>,
    /// AUTH, when asked for.
    pub auth: Option<AuthPlan>,
    /// `--proxy`, with its password.
    pub proxy: Option<Proxy>,
    /// Envelope sender.
    pub from: ReversePath,
    /// Envelope recipients.
    pub to: Vec<ForwardPath>,
    /// The message.
    pub body: Body,
    /// Send with BDAT.
    pub bdat: bool,
    /// EHLO name.
    pub helo: Option<Domain>,
    /// Per-phase timeout.
    pub timeout: Duration,
    /// PIPELINING on or off.
    pub pipelining: bool,
    /// `--transcript`.
    pub transcript: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// Load mode: `--count` and `--concurrency`.
    pub load: Option<Load>,
    /// `--json`, `--transcript-time`, and the record of the session's lines.
    pub observe: Observe,
    /// How the connection is made: socket, protocol, family, local address, client
    /// certificate, `--quit-after`.
    pub link: Link,
    /// DSN, XCLIENT and PRDR.
    pub extensions: Extensions,
}

/// `--count N --concurrency C`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Messages in all.
    pub count: u64,
    /// Connections at once.
    pub concurrency: usize,
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::usage(msg)
}

/// Refuses CR, LF and NUL in any value, whatever it is for: a line break in a value is either
/// a mistake or an injection attempt.
pub(crate) fn no_line_breaks(flag: &str, value: &str) -> Result<(), Failure> {
    if let Some(c) = value.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
        let name = match c {
            '\r' => "CR",
            '\n' => "LF",
            _ => "NUL",
        };
        return Err(usage(format!(
            "--{flag} {:?}: contains {name}",
            value.escape_debug().to_string()
        )));
    }
    Ok(())
}

/// Splits `HOST[:PORT]`, `[IPV6]:PORT`, `[IPV6]` or a bare IPv6 address.
pub fn split_server(server: &str) -> Result<(String, Option<u16>), Failure> {
    let bad = |why: &str| usage(format!("--server {server:?}: {why}"));
    if server.is_empty() {
        return Err(bad("is empty"));
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))
    };
    if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after an IPv6 address"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address between brackets"));
        }
        return match after {
            "" => Ok((host.to_owned(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host.to_owned(), Some(port(p)?))),
                None => Err(bad("expected ':PORT' after ']'")),
            },
        };
    }
    if server.matches(':').count() > 1 {
        // A bare IPv6 address: no port possible without brackets.
        return match server.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok((server.to_owned(), None)),
            Err(_) => Err(bad("write an IPv6 address with a port as [ADDR]:PORT")),
        };
    }
    let (host, port_part) = match server.split_once(':') {
        Some((h, p)) => (h, Some(port(p)?)),
        None => (server, None),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host.parse::<std::net::IpAddr>().is_err() && Domain::new(host).is_err() {
        return Err(bad("not a host name or an IP address"));
    }
    Ok((host.to_owned(), port_part))
}

/// Checks `--proxy` and reads its password from `--proxy-password-env`.
pub fn proxy(args: &Args, timeout: Duration) -> Result<Option<Proxy>, Failure> {
    let Some(url) = &args.proxy else {
        return Ok(None);
    };
    no_line_breaks("proxy", url)?;
    let proxy: Proxy = url
        .parse()
        .map_err(|e: smtp_client::ProxyUrlError| usage(format!("--proxy: {e}")))?;
    let proxy = proxy.handshake_timeout(timeout);
    let proxy = match (&args.proxy_password_env, proxy.username()) {
        (None, None) => proxy,
        (Some(_), None) => {
            return Err(usage(
                "--proxy-password-env needs a user in --proxy (socks5://USER@HOST:PORT)",
            ))
        }
        (None, Some(_)) => {
            return Err(usage(
                "--proxy has a user but no password: give --proxy-password-env VAR",
            ))
        }
        (Some(var), Some(_)) => {
            no_line_breaks("proxy-password-env", var)?;
            // Moved into the proxy's wiped-on-drop memory, never copied.
            let password = match std::env::var(var) {
                Ok(p) => p,
                Err(std::env::VarError::NotPresent) => {
                    return Err(usage(format!(
                        "--proxy-password-env {var}: the variable is not set"
                    )))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(usage(format!(
                        "--proxy-password-env {var}: the value is not UTF-8"
                    )))
                }
            };
            proxy.password(password)
        }
    };
    // Not printed with the value: it may hold the password.
    proxy.check().map_err(|e| usage(format!("--proxy: {e}")))?;
    Ok(Some(proxy))
}

fn read_password(args: &Args, user: &str) -> Result<Secret, Failure> {
    let password = if let Some(var) = &args.password_env {
        no_line_breaks("password-env", var)?;
        match std::env::var(var) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => {
                return Err(usage(format!(
                    "--password-env {var}: the variable is not set"
                )))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(usage(format!(
                    "--password-env {var}: the value is not UTF-8"
                )))
            }
        }
    } else if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--password-file {}: {e}", path.display())))?;
        let first = text.split('\n').next().unwrap_or("");
        first.strip_suffix('\r').unwrap_or(first).to_owned()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Password for {user}: "))
            .map_err(|e| usage(format!("reading the password: {e}")))?
    } else {
        return Err(usage(
            "no password: give --password-env VAR or --password-file FILE (stdin is not a terminal)",
        ));
    };
    if password.contains(['\r', '\n', '\0']) {
        // Not printed: it is the password.
        return Err(usage("the password contains CR, LF or NUL"));
    }
    Ok(Secret::new(password))
}

/// The AUTH part of the plan (also used by the demo, with its known password).
pub fn auth_plan(args: &Args, password: Option<Secret>) -> Result<Option<AuthPlan>, Failure> {
    if let Some(mech) = &args.auth {
        no_line_breaks("auth", mech)?;
    }
    if let Some(user) = &args.user {
        no_line_breaks("user", user)?;
    }
    if let Some(z) = &args.authzid {
        no_line_breaks("authzid", z)?;
    }
    let user = match (&args.user, &args.auth) {
        (None, None) => {
            if args.password_env.is_some() || args.password_file.is_some() {
                return Err(usage("a password was given but no --user"));
            }
            return Ok(None);
        }
        (None, Some(_)) => return Err(usage("--auth needs --user")),
        (Some(user), _) => user.clone(),
    };
    if user.is_empty() {
        return Err(usage("--user is empty"));
    }
    let choice = match args.auth.as_deref() {
        None => AuthChoice::Auto,
        Some(m) if m.eq_ignore_ascii_case("auto") => AuthChoice::Auto,
        Some(m) => {
            let ok = !m.is_empty()
                && m.len() <= 20
                && m.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(usage(format!("--auth {m:?}: not a SASL mechanism name")));
            }
            AuthChoice::Mechanism(m.to_ascii_uppercase())
        }
    };
    let password = match password {
        Some(p) => p,
        // GSSAPI, EXTERNAL, ANONYMOUS: nothing to prompt for (a password given is read,
        // and unused).
        None if needs_no_secret(&choice)
            && args.password_env.is_none()
            && args.password_file.is_none() =>
        {
            Secret::new("")
        }
        None => read_password(args, &user)?,
    };
    Ok(Some(AuthPlan {
        choice,
        user,
        authzid: args.authzid.clone(),
        password,
        ntlm_version: if args.ntlm_version == "1" {
            NtlmVersion::V1
        } else {
            NtlmVersion::V2
        },
        allow_plaintext: args.allow_plaintext_auth,
    }))
}

/// True for a mechanism that takes nothing from the credentials (GSSAPI's ticket is the
/// system's, EXTERNAL's identity the channel's).
fn needs_no_secret(choice: &AuthChoice) -> bool {
    matches!(choice, AuthChoice::Mechanism(m)
        if m.parse::<sasl_mechs::MechanismName>()
            .is_ok_and(|n| n.needs() == Some(sasl_mechs::Needs::Nothing)))
}

/// Checks the envelope flags.
pub fn envelope(from: &str, to: &[String]) -> Result<(ReversePath, Vec<ForwardPath>), Failure> {
    no_line_breaks("from", from)?;
    let from = match from {
        "" | "<>" => ReversePath::Null,
        addr => {
            let addr = strip_brackets(addr);
            ReversePath::Mailbox(Mailbox::new(addr).map_err(|e| usage(format!("--from: {e}")))?)
        }
    };
    if to.is_empty() {
        return Err(usage("at least one --to is needed"));
    }
    let mut rcpts = Vec::with_capacity(to.len());
    for t in to {
        no_line_breaks("to", t)?;
        rcpts.push(ForwardPath::new(strip_brackets(t)).map_err(|e| usage(format!("--to: {e}")))?);
    }
    Ok((from, rcpts))
}

fn strip_brackets(addr: &str) -> &str {
    addr.strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(addr)
}

/// Checks the message source; a file is opened now so that a missing one fails early.
pub fn body(args: &Args) -> Result<Body, Failure> {
    if let Some(s) = &args.subject {
        no_line_breaks("subject", s)?;
    }
    crate::composition::refuse_with_data(args)?;
    match args.data.as_deref() {
        None => Ok(Body::Generated(crate::composition::check(args)?)),
        Some("-") => Ok(Body::Stdin),
        Some(path) => {
            no_line_breaks("data", path)?;
            let file = File::open(path).map_err(|e| usage(format!("--data {path}: {e}")))?;
            let meta = file
                .metadata()
                .map_err(|e| usage(format!("--data {path}: {e}")))?;
            if !meta.is_file() {
                return Err(usage(format!("--data {path}: not a regular file")));
            }
            Ok(Body::File(file, meta.len()))
        }
    }
}

/// Checks the EHLO name.
pub fn helo(args: &Args) -> Result<Option<Domain>, Failure> {
    match &args.helo {
        None => Ok(None),
        Some(h) => {
            no_line_breaks("helo", h)?;
            Domain::new(h)
                .map(Some)
                .map_err(|e| usage(format!("--helo: {e}")))
        }
    }
}

/// Checks everything for a run against `--server`, before any connection.
pub fn plan(args: &Args) -> Result<Plan, Failure> {
    if let Some(server) = &args.server {
        no_line_breaks("server", server)?;
    }
    let link = crate::connection::plan(args)?;
    let (host, port) = match (&args.server, &link.socket) {
        (Some(server), _) => split_server(server)?,
        // Over a Unix socket the host only names the server in messages.
        (None, Some(_)) => ("localhost".to_owned(), None),
        (None, None) => return Err(usage("--server is required")),
    };
    if let Some(name) = &args.tls_server_name {
        no_line_breaks("tls-server-name", name)?;
    }
    if let Some(ca) = &args.ca_file {
        if !ca.is_file() {
            return Err(usage(format!("--ca-file {}: no such file", ca.display())));
        }
    }
    if args.timeout == 0 {
        return Err(usage("--timeout must be at least 1 second"));
    }
    let (from, to) = envelope(args.from.as_deref().unwrap_or_default(), &args.to)?;
    let helo = helo(args)?;
    let body = body(args)?;
    let proxy = proxy(args, Duration::from_secs(args.timeout))?;
    let extensions = crate::extensions::plan(args, to.len())?;
    // Last: it may prompt, and nothing else should be wrong by then. EXTERNAL has no
    // password: the client certificate is the credential (`link.external`).
    let auth = match link.external {
        Some(_) => None,
        None => auth_plan(args, None)?,
    };
    Ok(Plan {
        host,
        port,
        tls: args.tls_mode(),
        submission: args.submission,
        ca_file: args.ca_file.clone(),
        tls_server_name: args.tls_server_name.clone(),
        auth,
        proxy,
        from,
        to,
        body,
        bdat: args.bdat,
        helo,
        timeout: Duration::from_secs(args.timeout),
        pipelining: args.pipelining == PipeliningArg::Auto,
        transcript: args.transcript || args.transcript_time,
        quiet: args.quiet,
        load: load(args)?,
        observe: Observe::new(args),
        link,
        extensions,
    })
}

/// `--count` and `--concurrency`, checked.
fn load(args: &Args) -> Result<Option<Load>, Failure> {
    let Some(count) = args.count else {
        return Ok(None);
    };
    if count == 0 {
        return Err(usage("--count 0: nothing to send"));
    }
    if count > 1_000_000 {
        // Every message is held in memory until the run ends.
        return Err(usage(format!("--count {count}: at most 1000000")));
    }
    if !(1..=1000).contains(&args.concurrency) {
        return Err(usage(format!(
            "--concurrency {}: from 1 to 1000",
            args.concurrency
        )));
    }
    Ok(Some(Load {
        count,
        concurrency: args.concurrency,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_split() {
        assert_eq!(
            split_server("mx.example.test").unwrap(),
            ("mx.example.test".into(), None)
        );
        assert_eq!(
            split_server("127.0.0.1:2525").unwrap(),
            ("127.0.0.1".into(), Some(2525))
        );
        assert_eq!(
            split_server("[::1]:587").unwrap(),
            ("::1".into(), Some(587))
        );
        assert_eq!(split_server("[::1]").unwrap(), ("::1".into(), None));
        assert_eq!(split_server("::1").unwrap(), ("::1".into(), None));
        assert!(split_server("host:0").is_err());
        assert!(split_server("host:70000").is_err());
        assert!(split_server("host:").is_err());
        assert!(split_server(":25").is_err());
        assert!(split_server("[::1]x").is_err());
        assert!(split_server("[nothost]:25").is_err());
        assert!(split_server("bad host").is_err());
    }

    #[test]
    fn line_breaks_are_refused_everywhere() {
        assert!(no_line_breaks("from", "a@b\r\nRCPT TO:<c@d>").is_err());
        assert!(no_line_breaks("helo", "x\ny").is_err());
        assert!(no_line_breaks("user", "a\0b").is_err());
        assert!(no_line_breaks("user", "alice").is_ok());
        assert!(envelope("a@example.test\r\n", &["b@example.test".into()]).is_err());
        assert!(envelope("a@example.test", &["b@example.test\n".into()]).is_err());
    }

    fn args(extra: &[&str]) -> Args {
        let base = [
            "smtp-send",
            "--server",
            "mx.example.test",
            "--from",
            "a@example.test",
        ];
        Args::try_parse_from(
            base.iter()
                .chain(["--to", "b@example.test"].iter())
                .chain(extra),
        )
        .unwrap()
    }

    #[test]
    fn gssapi_asks_for_no_password() {
        // No --password-env or --password-file, and no prompt: the ticket cache is the
        // credential.
        let plan = auth_plan(&args(&["--auth", "gssapi", "--user", "alice"]), None)
            .unwrap()
            .unwrap();
        assert_eq!(plan.choice, AuthChoice::Mechanism("GSSAPI".into()));
        assert_eq!(plan.user, "alice");
        assert_eq!(plan.password.expose(), "");
        // A password given anyway is read (and the mechanism ignores it).
        let plan = auth_plan(
            &args(&[
                "--auth",
                "GSSAPI",
                "--user",
                "alice",
                "--password-env",
                "SMTP_SEND_CLI_UNSET_VAR",
            ]),
            None,
        );
        assert!(plan.is_err(), "the variable is not set: {plan:?}");
        // GSSAPI still needs --user: the principal the ticket must belong to.
        assert!(auth_plan(&args(&["--auth", "GSSAPI"]), None).is_err());
    }

    #[test]
    fn envelope_forms() {
        let (from, to) = envelope("<>", &["<b@example.test>".into(), "postmaster".into()]).unwrap();
        assert_eq!(from, ReversePath::Null);
        assert_eq!(to[0].to_string(), "<b@example.test>");
        assert_eq!(to[1], ForwardPath::postmaster());
        assert!(envelope("not an address", &["b@example.test".into()]).is_err());
        assert!(envelope("a@example.test", &[]).is_err());
    }
}
