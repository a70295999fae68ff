//! The replies given for each recipient after the data (LMTP, RFC 2033 4.2; PRDR): printed
//! one line each, and the recipients they refused, which make the run a partial failure
//! (exit 5, see `--help`).

use smtp_client::Delivery;

/// One line per recipient that got a reply of its own after the data, in RCPT order:
/// `<bob@example.test>: 552 5.2.2 <bob@example.test> Quota exceeded`. Empty when the server
/// gave one reply for all (SMTP without PRDR, or PRDR skipped for a single recipient).
pub fn reply_lines(delivery: &Delivery) -> Vec<String> {
    delivery
        .transactions
        .iter()
        .flat_map(|t| t.per_recipient.iter())
        .map(|r| format!("{}: {}", r.recipient, r.reply))
        .collect()
}

/// The recipients whose own reply after the data was not a success, each with it, for the
/// failure line.
pub fn refused_after_data(delivery: &Delivery) -> Vec<String> {
    delivery
        .transactions
        .iter()
        .flat_map(|t| t.per_recipient.iter())
        .filter(|r| !r.reply.is_positive_completion())
        .map(|r| format!("{}: {} (after the data)", r.recipient, r.reply))
        .collect()
}

/// How many recipients the message reached: those whose own reply after the data was a
/// success, or, without replies per recipient, every one accepted at RCPT.
pub fn delivered(delivery: &Delivery) -> usize {
    delivery
        .transactions
        .iter()
        .map(|t| t.delivered().len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_client::{RecipientReply, SendReport};
    use smtp_proto::{ForwardPath, Reply, ReplyCode};

    fn reply(code: u16, text: &str) -> Reply {
        Reply::new(ReplyCode::new(code).unwrap(), &[text.as_bytes()]).unwrap()
    }

    fn rcpt(user: &str) -> ForwardPath {
        ForwardPath::new(&format!("{user}@example.test")).unwrap()
    }

    #[test]
    fn lmtp_replies_each_recipient_and_the_refused_ones() {
        // RFC 2033 4.2: one reply per accepted recipient, in RCPT order.
        let per = |user: &str, code, text| RecipientReply {
            recipient: rcpt(user),
            reply: reply(code, text),
        };
        let report = SendReport {
            accepted: vec![rcpt("alice"), rcpt("bob"), rcpt("carol")],
            accepted_replies: Vec::new(),
            refused: Vec::new(),
            deferred: Vec::new(),
            reply: reply(250, "2.0.0 Ok"),
            per_recipient: vec![
                per("alice", 250, "2.0.0 Saved"),
                per("bob", 552, "5.2.2 Quota exceeded"),
                per("carol", 250, "2.0.0 Saved"),
            ],
            prdr: None,
        };
        let delivery = Delivery {
            transactions: vec![report],
            stopped: None,
        };
        assert_eq!(
            reply_lines(&delivery),
            [
                "<alice@example.test>: 250 2.0.0 Saved",
                "<bob@example.test>: 552 5.2.2 Quota exceeded",
                "<carol@example.test>: 250 2.0.0 Saved",
            ]
        );
        assert_eq!(
            refused_after_data(&delivery),
            ["<bob@example.test>: 552 5.2.2 Quota exceeded (after the data)"]
        );
        assert_eq!(delivered(&delivery), 2);
    }
}
