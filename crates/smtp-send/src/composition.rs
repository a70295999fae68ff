//! The message composition flags (`--header`, `--subject`, `--body`, `--attach`,
//! `--attach-type`) checked into a [`Composition`] before any connection: every value is
//! validated and every file read here, so a bad one exits 2 with nothing sent.
//!
//! `--attach-type` applies to the `--attach` flags that follow it on the command line, up
//! to the next `--attach-type`; `--attach-type auto` goes back to guessing from the file
//! name. clap keeps each flag's values apart, so their order is read from the parse's
//! argument positions ([`parse_args`]).

use std::io::Read;
use std::path::Path;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::Args;
use crate::exit::Failure;

/// The most bytes `--body @FILE` and every `--attach` may bring in, added up: the composed
/// message is held in memory (its size must be known before MAIL), so this bounds it.
/// Bigger messages are sent prepared, with `--data`.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// The longest header name taken: with its colon and a space it fits on one 78-character
/// line (RFC 5322 2.1.1), which folding cannot split.
pub const MAX_HEADER_NAME: usize = 76;

/// Headers the MIME structure writes itself: a second one would contradict it.
const MIME_HEADERS: &[&str] = &["Content-Type", "Content-Transfer-Encoding", "MIME-Version"];

/// The value `--attach-type` takes to go back to guessing.
pub const AUTO_TYPE: &str = "auto";

/// One `--header`, checked: a valid name, a value without line breaks or control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name, as given (header names are case-insensitive).
    pub name: String,
    /// The value, leading and trailing white space removed.
    pub value: String,
}

/// One `--attach`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name put in `Content-Disposition` (the path's last part).
    pub file_name: String,
    /// The content type: from `--attach-type`, else guessed from the file name.
    pub content_type: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// What the composed message is made of (without `--data`), checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Composition {
    /// `--header`, in order.
    pub headers: Vec<Header>,
    /// `--subject`.
    pub subject: Option<String>,
    /// `--body` (the text, or the file's).
    pub body: Option<String>,
    /// `--attach`, in order.
    pub attachments: Vec<Attachment>,
}

/// Which `--attach-type` is in force for each `--attach`, from the flags' positions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachTypes {
    /// For each `--attach` in order, the nearest `--attach-type` before it, or `None` to
    /// guess (none given, or `auto`).
    pub each: Vec<Option<String>>,
    /// An `--attach-type` after the last `--attach`: it applies to nothing.
    pub trailing: Option<String>,
}

/// Parses the command line (exiting as clap does on a usage error), then records which
/// `--attach-type` is in force for each `--attach`.
pub fn parse_args() -> Args {
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    args.attach_types = attach_types(&matches);
    args
}

/// Which `--attach-type` applies to each `--attach` in `matches`.
pub fn attach_types(matches: &ArgMatches) -> AttachTypes {
    let attach: Vec<usize> = matches
        .indices_of("attach")
        .map(Iterator::collect)
        .unwrap_or_default();
    let types: Vec<(usize, String)> = match (
        matches.indices_of("attach_type"),
        matches.get_many::<String>("attach_type"),
    ) {
        (Some(at), Some(values)) => at.zip(values.cloned()).collect(),
        _ => Vec::new(),
    };
    let before = |at: usize| {
        types
            .iter()
            .filter(|(t, _)| *t < at)
            .max_by_key(|(t, _)| *t)
            .map(|(_, v)| v.clone())
    };
    let last_attach = attach.last().copied().unwrap_or(0);
    AttachTypes {
        each: attach
            .iter()
            .map(|&a| before(a).filter(|v| !v.eq_ignore_ascii_case(AUTO_TYPE)))
            .collect(),
        trailing: types
            .iter()
            .filter(|(t, _)| *t > last_attach)
            .max_by_key(|(t, _)| *t)
            .map(|(_, v)| v.clone()),
    }
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::usage(msg)
}

/// The composition flags cannot shape a message given with `--data`, which is sent as it
/// is: naming both is a mistake, said in one line.
pub fn refuse_with_data(args: &Args) -> Result<(), Failure> {
    if args.data.is_none() {
        return Ok(());
    }
    let clash = if args.body.is_some() {
        Some("--body")
    } else if !args.attach.is_empty() {
        Some("--attach")
    } else if !args.header.is_empty() {
        Some("--header")
    } else if !args.attach_type.is_empty() {
        Some("--attach-type")
    } else {
        None
    };
    match clash {
        Some(flag) => Err(usage(format!(
            "{flag} cannot be used with --data: --data sends its message as it is"
        ))),
        None => Ok(()),
    }
}

/// Checks the composition flags and reads their files.
pub fn check(args: &Args) -> Result<Composition, Failure> {
    refuse_with_data(args)?;
    let headers = args
        .header
        .iter()
        .map(|h| header(h))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(subject) = &args.subject {
        control_characters("--subject", subject)?;
    }
    let mut budget = Budget(0);
    let body = match &args.body {
        None => None,
        Some(b) => Some(body(b, &mut budget)?),
    };
    for t in &args.attach_type {
        content_type("--attach-type", t)?;
    }
    let unused = match &args.attach_types.trailing {
        Some(t) => Some(t),
        // Positions not recorded (an Args built in code): judge by the counts.
        None if args.attach.is_empty() => args.attach_type.last(),
        None => None,
    };
    if let Some(unused) = unused {
        return Err(usage(format!(
            "--attach-type {unused}: no --attach follows it (it applies to the --attach \
             flags after it)"
        )));
    }
    let mut attachments = Vec::with_capacity(args.attach.len());
    for (i, path) in args.attach.iter().enumerate() {
        let given = args.attach_types.each.get(i).cloned().flatten();
        attachments.push(attachment(path, given, &mut budget)?);
    }
    Ok(Composition {
        headers,
        subject: args.subject.clone(),
        body,
        attachments,
    })
}

/// Refuses CR, LF, NUL and the other control characters but TAB, naming the first.
fn control_characters(flag: &str, value: &str) -> Result<(), Failure> {
    let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') else {
        return Ok(());
    };
    let name = match c {
        '\r' => "CR".to_owned(),
        '\n' => "LF".to_owned(),
        '\0' => "NUL".to_owned(),
        c => format!("the control character U+{:04X}", u32::from(c)),
    };
    Err(usage(format!(
        "{flag} {:?}: contains {name}",
        value.escape_debug().to_string()
    )))
}

/// `Name: value`: the name printable ASCII without a colon (RFC 5322 3.6.8 `ftext`), the
/// value without line breaks.
pub fn header(given: &str) -> Result<Header, Failure> {
    control_characters("--header", given)?;
    let bad = |why: &str| usage(format!("--header {given:?}: {why}"));
    let Some((name, value)) = given.split_once(':') else {
        return Err(bad("no colon: write it as \"Name: value\""));
    };
    if name.is_empty() {
        return Err(bad("no name before the colon"));
    }
    if let Some(c) = name.chars().find(|c| !matches!(c, '!'..='9' | ';'..='~')) {
        return Err(bad(&format!(
            "the name holds {c:?}, which a header name cannot (printable ASCII, no space)"
        )));
    }
    if name.len() > MAX_HEADER_NAME {
        return Err(bad(&format!(
            "the name is longer than {MAX_HEADER_NAME} characters"
        )));
    }
    if let Some(mime) = MIME_HEADERS.iter().find(|m| m.eq_ignore_ascii_case(name)) {
        return Err(bad(&format!(
            "{mime} is written by the MIME structure (use --attach-type for attachments)"
        )));
    }
    Ok(Header {
        name: name.to_owned(),
        value: value.trim().to_owned(),
    })
}

/// `type/subtype`, each an RFC 2045 token.
fn content_type(flag: &str, given: &str) -> Result<(), Failure> {
    if given.eq_ignore_ascii_case(AUTO_TYPE) {
        return Ok(());
    }
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b) && b != b' ')
    };
    match given.split_once('/') {
        Some((t, s)) if token(t) && token(s) => Ok(()),
        _ => Err(usage(format!(
            "{flag} {given:?}: not a MIME type (type/subtype, as image/png), nor {AUTO_TYPE}"
        ))),
    }
}

/// The bytes read from files so far, held below [`MAX_INPUT_BYTES`].
struct Budget(u64);

impl Budget {
    fn take(&mut self, what: &str, len: u64) -> Result<(), Failure> {
        self.0 = self.0.saturating_add(len);
        if self.0 > MAX_INPUT_BYTES {
            return Err(usage(format!(
                "{what}: the files add up to more than the {} MiB a composed message may \
                 carry; send a prepared message with --data",
                MAX_INPUT_BYTES / (1024 * 1024)
            )));
        }
        Ok(())
    }
}

/// Reads a regular file, within the budget; `what` names it in errors
/// (`--attach report.pdf`).
fn read_file(what: &str, path: &Path, budget: &mut Budget) -> Result<Vec<u8>, Failure> {
    let fail = |e: &dyn std::fmt::Display| usage(format!("{what}: {e}"));
    let mut file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let meta = file.metadata().map_err(|e| fail(&e))?;
    if !meta.is_file() {
        return Err(fail(&"not a regular file"));
    }
    budget.take(what, meta.len())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the size read: a file that grew since is caught, not read on and on.
    file.by_ref()
        .take(meta.len() + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&e))?;
    if bytes.len() as u64 > meta.len() {
        return Err(fail(&"the file grew while it was read"));
    }
    Ok(bytes)
}

/// `--body TEXT` or `--body @FILE` (UTF-8 text).
fn body(given: &str, budget: &mut Budget) -> Result<String, Failure> {
    let Some(path) = given.strip_prefix('@') else {
        if given.contains('\0') {
            return Err(usage("--body: contains NUL"));
        }
        return Ok(given.to_owned());
    };
    if path.is_empty() {
        return Err(usage("--body @: no file name after the @"));
    }
    let bytes = read_file(&format!("--body @{path}"), Path::new(path), budget)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        usage(format!(
            "--body @{path}: not UTF-8 text (send other data with --attach)"
        ))
    })?;
    if text.contains('\0') {
        return Err(usage(format!("--body @{path}: contains NUL")));
    }
    Ok(text)
}

/// `--attach FILE`, with the `--attach-type` in force or a guess from the name.
fn attachment(
    path: &Path,
    given_type: Option<String>,
    budget: &mut Budget,
) -> Result<Attachment, Failure> {
    let bytes = read_file(&format!("--attach {}", path.display()), path, budget)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".to_owned());
    control_characters("--attach", &file_name)?;
    let content_type = given_type.unwrap_or_else(|| {
        mime_guess::from_path(path)
            .first_or_octet_stream()
            .essence_str()
            .to_owned()
    });
    Ok(Attachment {
        file_name,
        content_type,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked() {
        assert_eq!(
            header("X-Test:  a value ").unwrap(),
            Header {
                name: "X-Test".into(),
                value: "a value".into()
            }
        );
        assert_eq!(header("X-Empty:").unwrap().value, "");
        for (bad, why) in [
            ("No colon here", "no colon"),
            (": value", "no name"),
            ("Bad Name: v", "' '"),
            ("Bad\u{e9}: v", "'\u{e9}'"),
            ("X-Inject: a\r\nBcc: evil@example.test", "CR"),
            ("X-Inject: a\nb", "LF"),
            ("X-Nul: a\0b", "NUL"),
            ("X-Bell: a\u{7}b", "U+0007"),
            (
                "content-type: text/html",
                "Content-Type is written by the MIME",
            ),
            ("MIME-Version: 2.0", "MIME-Version"),
        ] {
            let e = header(bad).unwrap_err();
            assert!(e.line.starts_with("--header "), "{bad:?}: {}", e.line);
            assert!(e.line.contains(why), "{bad:?}: {}", e.line);
            assert_eq!(e.kind, crate::exit::Kind::Usage);
        }
        let long = format!("{}: v", "X".repeat(MAX_HEADER_NAME + 1));
        assert!(header(&long).unwrap_err().line.contains("longer than"));
        assert!(header(&format!("{}: v", "X".repeat(MAX_HEADER_NAME))).is_ok());
    }

    #[test]
    fn content_types_are_checked() {
        assert!(content_type("--attach-type", "image/png").is_ok());
        assert!(content_type("--attach-type", "application/vnd.ms-excel").is_ok());
        assert!(content_type("--attach-type", "AUTO").is_ok());
        for bad in [
            "png",
            "image/",
            "/png",
            "image/png; x=y",
            "text/pl ain",
            "a/b/c",
        ] {
            assert!(content_type("--attach-type", bad).is_err(), "{bad}");
        }
    }

    fn matches(argv: &[&str]) -> ArgMatches {
        let base = [
            "smtp-send",
            "--server",
            "h",
            "--from",
            "a@b.c",
            "--to",
            "d@e.f",
        ];
        Args::command()
            .try_get_matches_from(base.iter().chain(argv))
            .unwrap()
    }

    #[test]
    fn attach_type_applies_to_the_attach_flags_after_it() {
        let m = matches(&[
            "--attach",
            "a.bin",
            "--attach-type",
            "image/png",
            "--attach",
            "b",
            "--attach",
            "c",
            "--attach-type=auto",
            "--attach",
            "d.txt",
            "--attach-type",
            "text/csv",
            "--attach",
            "e",
        ]);
        let types = attach_types(&m);
        assert_eq!(
            types.each,
            [
                None,
                Some("image/png".into()),
                Some("image/png".into()),
                None,
                Some("text/csv".into())
            ]
        );
        assert_eq!(types.trailing, None);
        assert_eq!(attach_types(&matches(&[])), AttachTypes::default());
        let trailing = attach_types(&matches(&["--attach", "a", "--attach-type", "text/csv"]));
        assert_eq!(trailing.each, [None]);
        assert_eq!(trailing.trailing.as_deref(), Some("text/csv"));
    }
}
