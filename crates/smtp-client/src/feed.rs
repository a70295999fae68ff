//! What an operation's body is read from and, for a batch, where its messages come from
//! and their ends go: the caller's iterator and callback behind one object, so both
//! drivers' loops stay the same few lines.

use std::io::{self, Read};

use crate::accounting::MessageResult;
use crate::envelope::Envelope;

/// The messages of a batch, one at a time, and where their results go.
pub(crate) trait Feed {
    /// The next message's envelope; its body is what is read from now on.
    fn next_message(&mut self) -> Option<Envelope>;
    /// A message of the batch ended.
    fn message_done(&mut self, result: MessageResult);
}

/// One body (of `send`, or none); no messages to give.
pub(crate) struct OneBody<R>(pub(crate) R);

impl<R> Feed for OneBody<R> {
    fn next_message(&mut self) -> Option<Envelope> {
        None
    }

    fn message_done(&mut self, _: MessageResult) {}
}

impl<R: Read> Read for OneBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// The caller's messages for a batch and its callback.
pub(crate) struct Messages<I, R, F> {
    messages: I,
    body: Option<R>,
    on_done: F,
}

impl<I, R, F> Messages<I, R, F> {
    pub(crate) fn new(messages: I, on_done: F) -> Messages<I, R, F> {
        Messages {
            messages,
            body: None,
            on_done,
        }
    }
}

impl<I, R, F> Feed for Messages<I, R, F>
where
    I: Iterator<Item = (Envelope, R)>,
    F: FnMut(MessageResult),
{
    fn next_message(&mut self) -> Option<Envelope> {
        let (envelope, body) = self.messages.next()?;
        self.body = Some(body);
        Some(envelope)
    }

    fn message_done(&mut self, result: MessageResult) {
        (self.on_done)(result);
    }
}

impl<I, R: Read, F> Read for Messages<I, R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.body {
            Some(body) => body.read(buf),
            None => Ok(0),
        }
    }
}

#[cfg(feature = "tokio")]
mod async_read {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, ReadBuf};

    use super::{Messages, OneBody};

    impl<R: AsyncRead + Unpin> AsyncRead for OneBody<R> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
        }
    }

    impl<I: Unpin, R: AsyncRead + Unpin, F: Unpin> AsyncRead for Messages<I, R, F> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match &mut self.get_mut().body {
                Some(body) => Pin::new(body).poll_read(cx, buf),
                None => Poll::Ready(Ok(())),
            }
        }
    }
}
