//! What a server offers, from its EHLO reply.

use std::collections::{HashMap, HashSet};

use crate::reply::Reply;

/// The `SIZE` extension's limit (RFC 1870).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SizeLimit {
    /// `SIZE` alone, `SIZE 0`, or a value that is not a number: no fixed limit announced.
    Unspecified,
    /// `SIZE n`: messages larger than n octets are refused.
    Max(u64),
}

/// The extensions a server announced in its EHLO reply (RFC 5321 4.1.1.1).
///
/// The first line is the server's greeting (its domain first); each further line is a
/// keyword and its parameters. Keywords are matched case-insensitively; unknown ones are
/// kept. `AUTH a b` and the legacy `AUTH=a b` lines are merged into one `AUTH` keyword.
///
/// ```
/// use smtp_proto::{Capabilities, ReplyParser, SizeLimit};
/// let mut parser = ReplyParser::new();
/// parser.feed(b"250-mx.example.com greets you\r\n250-SIZE 35882577\r\n\
///               250-AUTH LOGIN PLAIN\r\n250-AUTH=LOGIN CRAM-MD5\r\n250 PIPELINING\r\n");
/// let caps = Capabilities::from_ehlo(&parser.next_reply().unwrap().unwrap());
/// assert_eq!(caps.domain(), "mx.example.com");
/// assert_eq!(caps.size(), Some(SizeLimit::Max(35882577)));
/// assert_eq!(caps.auth_mechanisms(), ["LOGIN", "PLAIN", "CRAM-MD5"]);
/// assert!(caps.pipelining());
/// assert!(!caps.starttls());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    domain: String,
    /// Keyword (upper case) and parameters, in the order first seen.
    keywords: Vec<(String, Vec<String>)>,
    auth: Vec<String>,
    auth_line: Option<String>,
}

impl Capabilities {
    /// Reads the keywords of an EHLO reply. Never fails: lines that are not keywords
    /// (empty ones) are skipped, invalid UTF-8 is replaced by U+FFFD.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        let mut lines = reply.lines();
        if let Some(first) = lines.next() {
            let first = String::from_utf8_lossy(first);
            caps.domain = first
                .split_ascii_whitespace()
                .next()
                .unwrap_or("")
                .to_owned();
        }
        let mut legacy_auth_line = None;
        // What is already kept, so that each word is looked up once: a reply within the
        // parser's limits holds some 400,000 words, and comparing each with every earlier
        // one would take minutes.
        let mut auth_seen: HashSet<String> = HashSet::new();
        let mut keyword_at: HashMap<String, usize> = HashMap::new();
        let mut params_seen: Vec<HashSet<String>> = Vec::new();
        for line in lines {
            let line = String::from_utf8_lossy(line);
            let mut words = line.split_ascii_whitespace();
            let Some(first) = words.next() else { continue };
            let (keyword, legacy) = match first.split_once('=') {
                Some((k, rest)) if k.eq_ignore_ascii_case("AUTH") => ("AUTH", Some(rest)),
                _ => (first, None),
            };
            let keyword = keyword.to_ascii_uppercase();
            let params: Vec<String> = legacy
                .filter(|p| !p.is_empty())
                .into_iter()
                .chain(words)
                .map(str::to_owned)
                .collect();
            if keyword == "AUTH" {
                for mech in &params {
                    let mech = mech.to_ascii_uppercase();
                    if auth_seen.insert(mech.clone()) {
                        caps.auth.push(mech);
                    }
                }
                let slot = if legacy.is_some() {
                    &mut legacy_auth_line
                } else {
                    &mut caps.auth_line
                };
                if slot.is_none() {
                    *slot = Some(line.trim_end().to_owned());
                }
            }
            match keyword_at.get(&keyword) {
                Some(&at) => {
                    for p in params {
                        if params_seen[at].insert(p.clone()) {
                            caps.keywords[at].1.push(p);
                        }
                    }
                }
                None => {
                    keyword_at.insert(keyword.clone(), caps.keywords.len());
                    params_seen.push(params.iter().cloned().collect());
                    caps.keywords.push((keyword, params));
                }
            }
        }
        if caps.auth_line.is_none() {
            caps.auth_line = legacy_auth_line;
        }
        caps
    }

    /// The server's domain: the first word of the reply's first line.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether the server announced `keyword` (any case).
    pub fn supports(&self, keyword: &str) -> bool {
        self.params(keyword).is_some()
    }

    /// The parameters of `keyword` (any case), as sent; `None` when not announced.
    pub fn params(&self, keyword: &str) -> Option<&[String]> {
        self.keywords
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, p)| p.as_slice())
    }

    /// The SASL mechanisms offered, upper case, from `AUTH` and `AUTH=` lines merged,
    /// without duplicates, in the order first seen.
    pub fn auth_mechanisms(&self) -> &[String] {
        &self.auth
    }

    /// The text of the `AUTH` line as the server sent it (the `AUTH=` line when there is
    /// no `AUTH` line).
    pub fn auth_line(&self) -> Option<&str> {
        self.auth_line.as_deref()
    }

    /// The SIZE extension (RFC 1870); `None` when not offered.
    pub fn size(&self) -> Option<SizeLimit> {
        let params = self.params("SIZE")?;
        Some(match params.first().and_then(|p| p.parse::<u64>().ok()) {
            Some(0) | None => SizeLimit::Unspecified,
            Some(n) => SizeLimit::Max(n),
        })
    }

    /// PIPELINING (RFC 2920).
    pub fn pipelining(&self) -> bool {
        self.supports("PIPELINING")
    }

    /// 8BITMIME (RFC 6152).
    pub fn eight_bit_mime(&self) -> bool {
        self.supports("8BITMIME")
    }

    /// SMTPUTF8 (RFC 6531).
    pub fn smtp_utf8(&self) -> bool {
        self.supports("SMTPUTF8")
    }

    /// CHUNKING (RFC 3030): BDAT.
    pub fn chunking(&self) -> bool {
        self.supports("CHUNKING")
    }

    /// BINARYMIME (RFC 3030).
    pub fn binary_mime(&self) -> bool {
        self.supports("BINARYMIME")
    }

    /// DSN (RFC 3461).
    pub fn dsn(&self) -> bool {
        self.supports("DSN")
    }

    /// STARTTLS (RFC 3207).
    pub fn starttls(&self) -> bool {
        self.supports("STARTTLS")
    }

    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub fn enhanced_status_codes(&self) -> bool {
        self.supports("ENHANCEDSTATUSCODES")
    }

    /// REQUIRETLS (RFC 8689).
    pub fn require_tls(&self) -> bool {
        self.supports("REQUIRETLS")
    }

    /// Every keyword (upper case) with its parameters, unknown ones included, in the
    /// order first announced.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.keywords
            .iter()
            .map(|(k, p)| (k.as_str(), p.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplyCode;

    fn caps(lines: &[&str]) -> Capabilities {
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        Capabilities::from_ehlo(&Reply::new(ReplyCode::OK, &lines).unwrap())
    }

    #[test]
    fn rfc5321_and_rfc2920_examples() {
        // RFC 2920 3.2 example server response (abridged) and RFC 5321 D.1.
        let c = caps(&[
            "foo.com greets bar.com",
            "8BITMIME",
            "SIZE",
            "DSN",
            "HELP",
            "PIPELINING",
        ]);
        assert_eq!(c.domain(), "foo.com");
        assert!(c.eight_bit_mime());
        assert_eq!(c.size(), Some(SizeLimit::Unspecified));
        assert!(c.dsn());
        assert!(c.pipelining());
        assert!(c.supports("help"));
        assert!(!c.chunking());
        assert_eq!(c.auth_mechanisms(), &[] as &[String]);
        assert_eq!(c.auth_line(), None);
    }

    #[test]
    fn every_typed_accessor() {
        let c = caps(&[
            "mx",
            "size 1000",
            "smtputf8",
            "Chunking",
            "BINARYMIME",
            "STARTTLS",
            "ENHANCEDSTATUSCODES",
            "REQUIRETLS",
            "X-UNKNOWN a b",
        ]);
        assert_eq!(c.size(), Some(SizeLimit::Max(1000)));
        assert!(c.smtp_utf8() && c.chunking() && c.binary_mime() && c.starttls());
        assert!(c.enhanced_status_codes() && c.require_tls());
        assert!(!c.pipelining() && !c.dsn() && !c.eight_bit_mime());
        assert_eq!(c.params("x-unknown").unwrap(), ["a", "b"]);
        let all: Vec<&str> = c.iter().map(|(k, _)| k).collect();
        assert_eq!(all.len(), 8);
        assert!(all.contains(&"X-UNKNOWN"));
    }

    #[test]
    fn auth_forms_merge() {
        let c = caps(&["mx", "AUTH=LOGIN PLAIN", "AUTH plain cram-md5 XOAUTH2"]);
        assert_eq!(
            c.auth_mechanisms(),
            ["LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2"]
        );
        assert_eq!(c.auth_line(), Some("AUTH plain cram-md5 XOAUTH2"));
        assert!(c.supports("auth"));
        let c = caps(&["mx", "AUTH=LOGIN"]);
        assert_eq!(c.auth_mechanisms(), ["LOGIN"]);
        assert_eq!(c.auth_line(), Some("AUTH=LOGIN"));
        let c = caps(&["mx", "AUTH"]);
        assert!(c.supports("AUTH"));
        assert!(c.auth_mechanisms().is_empty());
    }

    #[test]
    fn size_forms() {
        assert_eq!(caps(&["mx", "SIZE 0"]).size(), Some(SizeLimit::Unspecified));
        assert_eq!(caps(&["mx", "SIZE x"]).size(), Some(SizeLimit::Unspecified));
        assert_eq!(caps(&["mx"]).size(), None);
    }

    #[test]
    fn non_utf8_and_blank_lines() {
        let reply =
            Reply::new(ReplyCode::OK, &[b"mx\xff hi", b"", b"X-\xfe", b"8BITMIME"]).unwrap();
        let c = Capabilities::from_ehlo(&reply);
        assert_eq!(c.domain(), "mx\u{FFFD}");
        assert!(c.supports("X-\u{FFFD}"));
        assert!(c.eight_bit_mime());
    }
}

#[cfg(test)]
mod bounded_work_tests {
    use super::*;
    use crate::{ReplyCode, ReplyLimits};

    /// The largest EHLO reply the default limits let through, every word a new AUTH
    /// mechanism and a new parameter of one keyword.
    fn hostile_ehlo() -> Reply {
        let limits = ReplyLimits::default();
        let mut n = 0u32;
        let mut lines = vec![b"mx.example.test".to_vec()];
        while lines.len() < limits.max_lines {
            let mut line = b"AUTH".to_vec();
            // "250-" + line + CRLF within the line limit.
            while line.len() + 5 + 4 + 2 <= limits.max_line_len {
                line.extend_from_slice(format!(" {n:04x}").as_bytes());
                n += 1;
            }
            lines.push(line);
        }
        let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        Reply::new(ReplyCode::OK, &lines).unwrap()
    }

    #[test]
    fn a_hostile_ehlo_reply_is_read_in_linear_time() {
        let reply = hostile_ehlo();
        // Each of the ~400,000 words compared with every earlier one would take minutes;
        // a linear pass takes well under a second even unoptimised.
        let start = std::time::Instant::now();
        let caps = Capabilities::from_ehlo(&reply);
        let elapsed = start.elapsed();
        assert!(caps.auth_mechanisms().len() > 300_000);
        assert_eq!(caps.auth_mechanisms()[0], "0000");
        assert!(elapsed < std::time::Duration::from_secs(3), "{elapsed:?}");
    }
}
