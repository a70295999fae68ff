//! The composed message: RFC 5322 headers (Date, Message-ID, From, To, Subject, and any
//! `--header`), a text body, and `--attach` files, as MIME (RFC 2045-2049) written by
//! `mail-builder`.

use std::time::{SystemTime, UNIX_EPOCH};

use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::HeaderType;
use mail_builder::MessageBuilder;
use smtp_proto::{ForwardPath, ReversePath};

use crate::composition::Composition;

/// The subject when `--subject` is not given.
pub const DEFAULT_SUBJECT: &str = "smtp-send test message";

/// The body when `--body` is not given.
pub const DEFAULT_BODY: &str = "This is a test message sent by smtp-send.\r\n";

/// Headers whose value has a structure (addresses, a date, message ids): written as given,
/// since an RFC 2047 encoded word over the whole value would hide the structure. Any other
/// header is unstructured text, encoded as RFC 2047 words when it is not ASCII.
const STRUCTURED: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Bcc",
    "Reply-To",
    "Sender",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
];

/// The domain of generated Message-IDs: the EHLO name when it is a name, else a reserved
/// one (RFC 2606).
pub fn id_domain(plan: &crate::cli::Plan) -> String {
    plan.helo
        .as_ref()
        .filter(|d| !d.is_address_literal())
        .map_or("smtp-send.invalid", |d| d.as_str())
        .to_owned()
}

/// One header of the message: its name, and whether its value is written as given.
struct Field {
    name: String,
    value: String,
    structured: bool,
}

impl Field {
    fn new(name: &str, value: String) -> Field {
        let structured = STRUCTURED.iter().any(|s| s.eq_ignore_ascii_case(name));
        Field {
            name: name.to_owned(),
            value,
            structured,
        }
    }

    fn value(self) -> HeaderType<'static> {
        if self.structured {
            Raw::new(self.value).into()
        } else {
            Text::new(self.value).into()
        }
    }
}

/// The message sent when no `--data` is given: the generated headers, each replaced by a
/// `--header` of the same name (whatever its case) in its place, the other `--header`s
/// after them in order; the body; the attachments (then `multipart/mixed`).
pub fn compose(
    composition: &Composition,
    from: &ReversePath,
    to: &[ForwardPath],
    id_domain: &str,
    now: SystemTime,
) -> Vec<u8> {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, nanos) = (since.as_secs(), since.subsec_nanos());
    let from_header = match from.mailbox() {
        Some(m) => format!("<{m}>"),
        None => "<postmaster@localhost>".to_owned(),
    };
    let to_header: Vec<String> = to.iter().map(ToString::to_string).collect();
    let mut fields = vec![
        Field::new("Date", rfc5322_date(secs)),
        Field::new(
            "Message-ID",
            format!("<{secs}.{nanos:09}.{}@{id_domain}>", std::process::id()),
        ),
        Field::new("From", from_header),
        Field::new("To", to_header.join(", ")),
        Field::new(
            "Subject",
            composition
                .subject
                .clone()
                .unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
        ),
    ];
    let generated = fields.len();
    let mut replaced = vec![false; generated];
    for h in &composition.headers {
        let slot =
            (0..generated).find(|&i| !replaced[i] && fields[i].name.eq_ignore_ascii_case(&h.name));
        match slot {
            // The generated name's spelling is kept: mail-builder adds its own Date and
            // Message-ID unless it finds those exact names.
            Some(i) => {
                let name = std::mem::take(&mut fields[i].name);
                fields[i] = Field::new(&name, h.value.clone());
                replaced[i] = true;
            }
            None => fields.push(Field::new(&h.name, h.value.clone())),
        }
    }
    let mut builder = MessageBuilder::new();
    for field in fields {
        let name = field.name.clone();
        builder = builder.header(name, field.value());
    }
    builder = builder.text_body(
        composition
            .body
            .clone()
            .unwrap_or_else(|| DEFAULT_BODY.to_owned()),
    );
    for a in &composition.attachments {
        builder = builder.attachment(a.content_type.clone(), a.file_name.clone(), a.bytes.clone());
    }
    let mut out = Vec::new();
    builder.serialize(&mut out);
    out
}

/// `Thu, 01 Jan 1970 00:00:00 +0000` (RFC 5322 3.3), in UTC.
pub fn rfc5322_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (y, mo, d) = civil_from_days(days as i64);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(mo - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month (1..=12), day (1..=31) of a count of days since 1970-01-01, in the proleptic
/// Gregorian calendar (the era-based method: 400-year eras of 146097 days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        // 2000-02-29 12:34:56 UTC, a leap day in a century leap year: 951827696.
        assert_eq!(rfc5322_date(951_827_696), "Tue, 29 Feb 2000 12:34:56 +0000");
        // 2038-01-19 03:14:07 UTC, the 32-bit time_t limit: 2147483647.
        assert_eq!(
            rfc5322_date(2_147_483_647),
            "Tue, 19 Jan 2038 03:14:07 +0000"
        );
    }

    #[test]
    fn message_has_the_headers() {
        let from = ReversePath::Mailbox(smtp_proto::Mailbox::new("a@example.test").unwrap());
        let to = [ForwardPath::new("b@example.test").unwrap()];
        let c = Composition {
            subject: Some("hi".into()),
            ..Composition::default()
        };
        let m = compose(&c, &from, &to, "client.example", UNIX_EPOCH);
        let m = String::from_utf8(m).unwrap();
        assert!(m.starts_with("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\nMessage-ID: <0."));
        assert!(m.contains(
            "@client.example>\r\nFrom: <a@example.test>\r\nTo: <b@example.test>\r\nSubject: hi\r\n"
        ));
        assert!(m.contains("\r\n\r\nThis is a test"));
    }
}
