//! How the connection is made, checked before any is: `--socket`, `--protocol`,
//! `--local-addr`, `-4`/`-6`, the client certificate (`--tls-cert`, `--tls-key`) and AUTH
//! EXTERNAL that relies on it, and `--quit-after`. Every value and every combination is
//! checked here, so that a bad one exits 2 with one line naming the flag.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::ValueEnum;
use smtp_client::{AddressFamily, ClientConfig, Protocol, TlsConfig};

use crate::cli::{no_line_breaks, Args, TlsArg};
use crate::exit::Failure;
use crate::stage::Stage;

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// SMTP (RFC 5321).
    Smtp,
    /// LMTP (RFC 2033): LHLO instead of EHLO, and a reply per recipient after the data.
    Lmtp,
}

/// The client certificate: the files, checked (readable, a certificate, a key that is its).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// `--tls-cert`: the certificate, then any intermediates (PEM).
    pub cert: PathBuf,
    /// `--tls-key`: its private key (PEM).
    pub key: PathBuf,
}

/// `--auth EXTERNAL`: the identity comes from the client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// `--authzid`: the identity to act as, when not the certificate's own.
    pub authzid: Option<String>,
}

/// The connection flags, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    /// `-4` / `-6`.
    pub family: AddressFamily,
    /// `--local-addr`: the address and, when given, the port to connect from.
    pub local: Option<(IpAddr, Option<u16>)>,
    /// `--socket`: a Unix-domain socket instead of `--server`.
    pub socket: Option<PathBuf>,
    /// `--protocol`.
    pub protocol: Protocol,
    /// `--tls-cert` and `--tls-key`.
    pub client_cert: Option<ClientCert>,
    /// `--auth EXTERNAL`.
    pub external: Option<External>,
    /// `--quit-after`.
    pub quit_after: Option<Stage>,
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::usage(msg)
}

/// True when `--auth EXTERNAL` is asked for (any case).
pub fn wants_external(args: &Args) -> bool {
    args.auth
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("EXTERNAL"))
}

/// Checks the connection flags and how they combine with the others.
pub fn plan(args: &Args) -> Result<Link, Failure> {
    if args.socket.is_some() && args.server.is_some() {
        return Err(usage(
            "--socket and --server: give one (--socket connects to a Unix socket instead)",
        ));
    }
    if args.ipv4 && args.ipv6 {
        return Err(usage("-4 and -6: give one (-4: IPv4 only, -6: IPv6 only)"));
    }
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => AddressFamily::Ipv4,
        (_, true) => AddressFamily::Ipv6,
        _ => AddressFamily::Any,
    };
    let protocol = match args.protocol {
        ProtocolArg::Smtp => Protocol::Smtp,
        ProtocolArg::Lmtp => Protocol::Lmtp,
    };
    let socket = match &args.socket {
        None => None,
        Some(path) => {
            no_line_breaks("socket", &path.to_string_lossy())?;
            if path.as_os_str().is_empty() {
                return Err(usage("--socket: the path is empty"));
            }
            if let Some(tls @ (TlsArg::Starttls | TlsArg::Implicit)) = args.tls {
                let what = match (tls, protocol) {
                    (TlsArg::Implicit, Protocol::Lmtp) => "--tls implicit with --protocol lmtp",
                    _ => "TLS",
                };
                return Err(usage(format!(
                    "--socket: {what} over a Unix socket is not supported: add --tls none"
                )));
            }
            if family != AddressFamily::Any {
                return Err(usage(
                    "--socket with -4 or -6: a Unix socket has no address family",
                ));
            }
            if args.proxy.is_some() {
                return Err(usage(
                    "--socket with --proxy: a Unix socket is reached directly",
                ));
            }
            Some(path.clone())
        }
    };
    if args.prdr && protocol == Protocol::Lmtp {
        return Err(usage(
            "--prdr with --protocol lmtp: LMTP gives a reply per recipient anyway",
        ));
    }
    if protocol == Protocol::Lmtp && args.submission {
        return Err(usage(
            "--submission with --protocol lmtp: LMTP is not submission",
        ));
    }
    let local = match &args.local_addr {
        None => None,
        Some(text) => {
            let (ip, port) = local_addr(text)?;
            if socket.is_some() {
                return Err(usage(
                    "--local-addr with --socket: a Unix socket has no address",
                ));
            }
            match (family, ip) {
                (AddressFamily::Ipv4, IpAddr::V6(_)) => {
                    return Err(usage(format!(
                        "--local-addr {text}: an IPv6 address with -4"
                    )))
                }
                (AddressFamily::Ipv6, IpAddr::V4(_)) => {
                    return Err(usage(format!(
                        "--local-addr {text}: an IPv4 address with -6"
                    )))
                }
                _ => {}
            }
            Some((ip, port))
        }
    };
    if let Some(server) = &args.server {
        // An address literal of the other family could never be connected to.
        let host = crate::cli::split_server(server).map(|(h, _)| h).ok();
        let ip = host.and_then(|h| h.parse::<IpAddr>().ok());
        match (family, ip) {
            (AddressFamily::Ipv4, Some(IpAddr::V6(_))) => {
                return Err(usage(format!("--server {server}: an IPv6 address with -4")))
            }
            (AddressFamily::Ipv6, Some(IpAddr::V4(_))) => {
                return Err(usage(format!("--server {server}: an IPv4 address with -6")))
            }
            _ => {}
        }
        if let (Some(server_ip), Some((local_ip, _))) = (ip, local) {
            if server_ip.is_ipv4() != local_ip.is_ipv4() && args.proxy.is_none() {
                return Err(usage(format!(
                    "--local-addr {}: not of the same family as --server {server}",
                    args.local_addr.as_deref().unwrap_or_default()
                )));
            }
        }
    }
    let client_cert = client_cert(args)?;
    let external = external(args, client_cert.is_some())?;
    if args.count.is_some() {
        if !args.xclient.is_empty() {
            return Err(usage("--xclient with --count: load mode sends no XCLIENT"));
        }
        if external.is_some() {
            return Err(usage(
                "--auth EXTERNAL with --count: load mode authenticates with a password",
            ));
        }
    }
    let quit_after = match args.quit_after {
        None => None,
        Some(stage) => Some(quit_after(args, stage, external.is_some())?),
    };
    Ok(Link {
        family,
        local,
        socket,
        protocol,
        client_cert,
        external,
        quit_after,
    })
}

/// Refuses the connection and extension flags with `--demo`, which makes its own
/// connection to its own server.
pub fn refuse_with_demo(args: &Args) -> Result<(), Failure> {
    let given = [
        ("--socket", args.socket.is_some()),
        ("--protocol lmtp", args.protocol == ProtocolArg::Lmtp),
        ("--local-addr", args.local_addr.is_some()),
        ("-4", args.ipv4),
        ("-6", args.ipv6),
        ("--tls-cert", args.tls_cert.is_some()),
        ("--tls-key", args.tls_key.is_some()),
        ("--quit-after", args.quit_after.is_some()),
        ("--xclient", !args.xclient.is_empty()),
        ("--prdr", args.prdr),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((flag, _)) => Err(usage(format!(
            "{flag} with --demo: the demo makes its own connection; use --server"
        ))),
        None => Ok(()),
    }
}

/// `IP`, `IP:PORT`, `[IPV6]`, `[IPV6]:PORT` or a bare IPv6 address.
fn local_addr(text: &str) -> Result<(IpAddr, Option<u16>), Failure> {
    no_line_breaks("local-addr", text)?;
    let bad = |why: &str| usage(format!("--local-addr {text:?}: {why}"));
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))
    };
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after an IPv6 address"))?;
        let ip: std::net::Ipv6Addr = ip
            .parse()
            .map_err(|_| bad("not an IPv6 address between brackets"))?;
        return match after {
            "" => Ok((IpAddr::V6(ip), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((IpAddr::V6(ip), Some(port(p)?))),
                None => Err(bad("expected ':PORT' after ']'")),
            },
        };
    }
    match text.split_once(':') {
        Some((ip, p)) => {
            let ip: std::net::Ipv4Addr = ip
                .parse()
                .map_err(|_| bad("not an IP address (a name is not allowed here)"))?;
            Ok((IpAddr::V4(ip), Some(port(p)?)))
        }
        None => Err(bad("not an IP address (a name is not allowed here)")),
    }
}

/// `--tls-cert` and `--tls-key`: both or neither, readable, and the key the certificate's.
fn client_cert(args: &Args) -> Result<Option<ClientCert>, Failure> {
    let (cert, key) = match (&args.tls_cert, &args.tls_key) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(usage(
                "--tls-cert needs --tls-key (the certificate's private key)",
            ))
        }
        (None, Some(_)) => {
            return Err(usage(
                "--tls-key needs --tls-cert (the certificate it is the key of)",
            ))
        }
        (Some(c), Some(k)) => (c, k),
    };
    for (flag, path) in [("tls-cert", cert), ("tls-key", key)] {
        no_line_breaks(flag, &path.to_string_lossy())?;
        if let Err(e) = std::fs::File::open(path) {
            return Err(usage(format!("--{flag} {}: {e}", path.display())));
        }
    }
    if args.tls_mode() == TlsArg::None {
        return Err(usage(
            "--tls-cert with --tls none: a client certificate needs TLS",
        ));
    }
    // Loaded and built now, so a bad file or a key that is not the certificate's stops the
    // run before it connects.
    TlsConfig::webpki_roots()
        .client_cert_pem_files(cert, key)
        .and_then(|tls| tls.build().map(drop))
        .map_err(|e| usage(format!("--tls-cert/--tls-key: {}", plain(&e))))?;
    Ok(Some(ClientCert {
        cert: cert.clone(),
        key: key.clone(),
    }))
}

/// A TLS error's text without the `TLS configuration:` prefix the client gives it.
fn plain(e: &smtp_client::Error) -> String {
    match e {
        smtp_client::Error::Tls(smtp_client::TlsError::Config(text)) => text.clone(),
        other => other.to_string(),
    }
}

/// `--auth EXTERNAL`: needs the client certificate; takes no user and no password.
fn external(args: &Args, has_cert: bool) -> Result<Option<External>, Failure> {
    if !wants_external(args) {
        return Ok(None);
    }
    if !has_cert {
        return Err(usage(
            "--auth EXTERNAL needs --tls-cert and --tls-key: the identity is the certificate's",
        ));
    }
    if args.user.is_some() {
        return Err(usage(
            "--auth EXTERNAL takes no --user: the identity is the certificate's (--authzid acts as another)",
        ));
    }
    if args.password_env.is_some() || args.password_file.is_some() {
        return Err(usage("--auth EXTERNAL takes no password"));
    }
    if let Some(z) = &args.authzid {
        no_line_breaks("authzid", z)?;
    }
    Ok(Some(External {
        authzid: args.authzid.clone(),
    }))
}

/// `--quit-after STAGE`: a stage this run reaches.
fn quit_after(args: &Args, stage: Stage, external: bool) -> Result<Stage, Failure> {
    let bad = |why: &str| Err(usage(format!("--quit-after {stage}: {why}")));
    if args.count.is_some() {
        return bad("not in load mode (--count)");
    }
    match stage {
        Stage::Tls if args.tls_mode() == TlsArg::None => bad("--tls none makes no TLS"),
        Stage::Auth if args.user.is_none() && args.auth.is_none() && !external => {
            bad("no AUTH is asked for (give --user, or --auth EXTERNAL)")
        }
        Stage::Data if args.bdat => bad("--bdat sends no DATA command"),
        Stage::Data if args.data.as_deref() == Some("-") => {
            bad("standard input would be left unread (--data -)")
        }
        _ => Ok(stage),
    }
}

/// `config` with the connection flags: family, local address, socket, protocol.
pub fn apply(link: &Link, mut config: ClientConfig) -> ClientConfig {
    config = config.family(link.family).protocol(link.protocol);
    if let Some((ip, port)) = link.local {
        config = config.local_addr(ip);
        if let Some(port) = port {
            config = config.local_port(port);
        }
    }
    if let Some(path) = &link.socket {
        config = config.unix_socket(path.clone());
    }
    config
}

/// `tls` with the client certificate, when there is one.
pub fn apply_tls(link: &Link, tls: TlsConfig) -> Result<TlsConfig, Failure> {
    match &link.client_cert {
        None => Ok(tls),
        Some(c) => tls
            .client_cert_pem_files(&c.cert, &c.key)
            .map_err(|e| usage(format!("--tls-cert/--tls-key: {}", plain(&e)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses() {
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(local_addr("127.0.0.2").unwrap(), (v4, None));
        assert_eq!(local_addr("127.0.0.2:2525").unwrap(), (v4, Some(2525)));
        assert_eq!(local_addr("::1").unwrap(), (v6, None));
        assert_eq!(local_addr("[::1]").unwrap(), (v6, None));
        assert_eq!(local_addr("[::1]:2525").unwrap(), (v6, Some(2525)));
        for bad in [
            "localhost",
            "127.0.0.2:0",
            "127.0.0.2:70000",
            "[::1",
            "[::1]x",
            "[127.0.0.1]:25",
            "127.0.0.2\r\n",
            "",
        ] {
            assert!(local_addr(bad).is_err(), "{bad:?}");
        }
    }
}
