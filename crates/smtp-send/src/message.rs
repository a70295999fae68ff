//! The generated test message: RFC 5322 headers (Date, Message-ID, From, To, Subject) and a
//! short body.

use std::time::{SystemTime, UNIX_EPOCH};

use smtp_proto::{ForwardPath, ReversePath};

/// The domain of generated Message-IDs: the EHLO name when it is a name, else a reserved
/// one (RFC 2606).
pub fn id_domain(plan: &crate::cli::Plan) -> String {
    plan.helo
        .as_ref()
        .filter(|d| !d.is_address_literal())
        .map_or("smtp-send.invalid", |d| d.as_str())
        .to_owned()
}

/// The message sent when no `--data` is given.
pub fn test_message(
    from: &ReversePath,
    to: &[ForwardPath],
    subject: &str,
    id_domain: &str,
    now: SystemTime,
) -> Vec<u8> {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let from_header = match from.mailbox() {
        Some(m) => format!("<{m}>"),
        None => "<postmaster@localhost>".to_owned(),
    };
    let to_header: Vec<String> = to.iter().map(ToString::to_string).collect();
    let mut m = String::new();
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(secs)));
    m.push_str(&format!(
        "Message-ID: <{secs}.{nanos:09}.{}@{id_domain}>\r\n",
        std::process::id()
    ));
    m.push_str(&format!("From: {from_header}\r\n"));
    m.push_str(&format!("To: {}\r\n", to_header.join(", ")));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("\r\n");
    m.push_str("This is a test message sent by smtp-send.\r\n");
    m.into_bytes()
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
        let m = test_message(&from, &to, "hi", "client.example", UNIX_EPOCH);
        let m = String::from_utf8(m).unwrap();
        assert!(m.starts_with("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\nMessage-ID: <0."));
        assert!(m.contains(
            "@client.example>\r\nFrom: <a@example.test>\r\nTo: <b@example.test>\r\nSubject: hi\r\n"
        ));
        assert!(m.contains("\r\n\r\nThis is a test"));
    }
}
