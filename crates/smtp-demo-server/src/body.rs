//! The message body: DATA (dot-stuffed, ended by `.`) and BDAT chunks (RFC 3030), both
//! bounded by the message size limit, and the hand-over of an accepted message to the store.

use smtp_proto::{UnstuffStatus, Unstuffer};

use crate::message::{ReceivedMessage, Transfer};
use crate::server::lock;
use crate::session::{Connection, Transaction};
use crate::transport::End;

impl Connection<'_> {
    /// DATA: reads a dot-stuffed body and delivers it, or drops it when it is too big.
    pub(crate) fn data(&mut self, arg: &str) -> Result<bool, End> {
        if !arg.is_empty() {
            self.error(501, "5.5.4 DATA takes no argument");
            return Ok(true);
        }
        if self.txn.from.is_none() {
            self.error(503, "5.5.1 Need MAIL before DATA");
            return Ok(true);
        }
        if self.txn.chunks.is_some() {
            self.error(503, "5.5.1 DATA after BDAT");
            return Ok(true);
        }
        if self.txn.to.is_empty() {
            self.error(554, "5.5.1 No valid recipients");
            return Ok(true);
        }
        self.reply(354, &["End data with <CR><LF>.<CR><LF>"]);
        let max = self.config().max_message_size;
        let mut unstuffer = Unstuffer::new();
        let mut message = Vec::new();
        let mut too_big = false;
        loop {
            let mut out = Vec::new();
            let status = unstuffer.feed(&self.input, &mut out);
            let consumed = match status {
                UnstuffStatus::Done { consumed } => consumed,
                UnstuffStatus::NeedMore => self.input.len(),
            };
            self.input.drain(..consumed);
            if message.len() + out.len() > max {
                // Keep reading to the end of data, but keep none of it.
                too_big = true;
                message = Vec::new();
            } else if !too_big {
                message.extend_from_slice(&out);
            }
            if unstuffer.is_done() {
                break;
            }
            self.fill()?;
        }
        if too_big {
            self.error(552, "5.3.4 Message size exceeds fixed limit");
            self.txn = Transaction::default();
        } else {
            self.deliver(message, Transfer::Data);
            self.reply(250, &["2.0.0 Message accepted for delivery"]);
        }
        Ok(true)
    }

    /// BDAT: reads one chunk; the LAST one delivers the message. A malformed BDAT line
    /// ends the session, since the chunk that follows cannot be skipped.
    pub(crate) fn bdat(&mut self, arg: &str) -> Result<bool, End> {
        let mut words = arg.split(' ').filter(|w| !w.is_empty());
        let size = words.next().and_then(|w| w.parse::<u64>().ok());
        let last = match words.next() {
            None => Some(false),
            Some(w) if w.eq_ignore_ascii_case("LAST") => Some(true),
            Some(_) => None,
        };
        let (Some(size), Some(last), None) = (size, last, words.next()) else {
            // The chunk's length is unknown, so its bytes cannot be skipped: the session
            // cannot continue (RFC 3030 section 2).
            return Err(End::Say("501 5.5.4 Syntax: BDAT size [LAST]; closing"));
        };
        let max = self.config().max_message_size as u64;
        let have = self.txn.chunks.as_ref().map_or(0, |c| c.len() as u64);
        let keep = !self.txn.too_big && have.saturating_add(size) <= max;
        let chunk = self.read_exact(size, keep)?;
        if self.txn.from.is_none() || self.txn.to.is_empty() {
            self.error(503, "5.5.1 Need MAIL and RCPT before BDAT");
            return Ok(true);
        }
        let chunks = self.txn.chunks.get_or_insert_with(Vec::new);
        match chunk {
            Some(bytes) => chunks.extend_from_slice(&bytes),
            None => {
                chunks.clear();
                self.txn.too_big = true;
            }
        }
        if self.txn.too_big {
            if last {
                self.txn = Transaction::default();
            }
            self.error(552, "5.3.4 Message size exceeds fixed limit");
        } else if last {
            let message = self.txn.chunks.take().unwrap_or_default();
            self.deliver(message, Transfer::Bdat);
            self.reply(250, &["2.0.0 Message accepted for delivery"]);
        } else {
            let text = format!("2.0.0 {size} octets received");
            self.reply(250, &[&text]);
        }
        Ok(true)
    }

    /// Reads exactly `size` octets of a BDAT chunk; keeps them when `keep`, else drops them
    /// as they arrive (`None`).
    fn read_exact(&mut self, size: u64, keep: bool) -> Result<Option<Vec<u8>>, End> {
        let mut left = size;
        let mut kept = Vec::new();
        loop {
            let take = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.input.len());
            if keep {
                kept.extend_from_slice(&self.input[..take]);
            }
            self.input.drain(..take);
            left -= take as u64;
            if left == 0 {
                return Ok(keep.then_some(kept));
            }
            self.fill()?;
        }
    }

    fn deliver(&mut self, data: Vec<u8>, transfer: Transfer) {
        let txn = std::mem::take(&mut self.txn);
        let message = ReceivedMessage {
            helo: self.helo.clone().unwrap_or_default(),
            authenticated: self.auth.as_ref().map(|(u, _)| u.clone()),
            mechanism: self.auth.as_ref().map(|(_, m)| m.clone()),
            tls: self.tls,
            from: txn.from.unwrap_or_default(),
            mail_params: txn.mail_params,
            to: txn.to,
            rcpt_params: txn.rcpt_params,
            data,
            transfer,
        };
        lock(&self.shared.store).messages.push(message);
        self.shared.arrived.notify_all();
    }
}
