//! A DATA writer (Net::SMTP's `datafh`): the message written with `std::io::Write` or
//! tokio's `AsyncWrite`, dot-stuffed as it goes, ended by `finish`, which returns the final
//! reply.
//!
//! - `data_writer` sends DATA (after MAIL and RCPT were accepted: else
//!   [`Misuse::NoMailTransaction`](crate::Misuse::NoMailTransaction), nothing sent) and, on
//!   354, hands out the writer. The session then streams
//!   ([`Session::in_stream`](crate::Session::in_stream)).
//! - Each write is stuffed into the session's output
//!   ([`Session::stream_data`](crate::Session::stream_data)): a `.`
//!   opening a line is doubled and bare CR or LF made CRLF, wherever the writes cut the
//!   message, so no byte the caller writes can end the data early. The output is the
//!   buffer: written once it holds 64 KiB (`WRITER_BUF`), so a caller's small writes
//!   never become one system call each, and it never holds much more.
//! - `finish` appends the end of data to what is left and writes it in one write, then
//!   waits for the reply within the end-of-data timeout: a 2xx, or [`Error::Refused`]
//!   carrying the reply.
//! - A write that fails (the server closed, the write timeout passed, a TLS error) ends the
//!   message: the session is broken and the connection closed; that write returns an
//!   `io::Error` whose inner error is the [`Error`], every later one
//!   [`Misuse::ConnectionBroken`](crate::Misuse::ConnectionBroken), and so does `finish`.
//! - A writer dropped before `finish` (a `?` that returned early, a panic unwinding, an
//!   async task cancelled) abandons the message: SMTP has no way to cancel DATA but to drop
//!   the connection, so the connection is dropped at once without the end of data (what
//!   was buffered is discarded), and every later call of the client fails with
//!   [`Misuse::DataAbandoned`](crate::Misuse::DataAbandoned). A writer leaked with
//!   `mem::forget` is found out by the next call, which does the same: only the writer may
//!   end its message.
//!
//! The decisions are `DriverCore`'s (`stream_*`); the writers only move bytes, the
//! blocking one with one `write_all` per buffer, the async one as far as the socket takes.

use std::io::{self, Write};

use smtp_proto::Reply;

use crate::blocking::SmtpClient;
use crate::error::Error;

/// The message after DATA, written with [`std::io::Write`]: Net::SMTP's `datafh`, from
/// [`SmtpClient::data_writer`].
///
/// Bytes are dot-stuffed as they come (any cut gives the same bytes on the wire) and
/// written 64 KiB at a time; [`flush`](Write::flush) writes what is buffered. End the
/// message with [`finish`](Self::finish), which returns the final reply. Dropped before
/// that, the writer abandons the message: the connection is dropped without the end of
/// data, so the message is never delivered, and the client refuses every later call with
/// [`Misuse::DataAbandoned`](crate::Misuse::DataAbandoned).
///
/// A failed write returns an `io::Error` whose inner error
/// (`err.get_ref()?.downcast_ref::<smtp_client::Error>()`) is the client's [`Error`].
pub struct DataWriter<'a> {
    /// `None` once [`finish`](Self::finish) took it.
    client: Option<&'a mut SmtpClient>,
}

impl<'a> DataWriter<'a> {
    pub(crate) fn new(client: &'a mut SmtpClient) -> DataWriter<'a> {
        DataWriter {
            client: Some(client),
        }
    }

    /// Ends the message (`CRLF.CRLF`, the CRLF only when needed) and waits for the final
    /// reply (Net::SMTP's `dataend`): the 2xx reply, or [`Error::Refused`] carrying the
    /// server's. What is still buffered goes out with the end of data, in one write.
    ///
    /// After a failed write: [`Misuse::ConnectionBroken`](crate::Misuse::ConnectionBroken),
    /// and nothing is sent.
    pub fn finish(mut self) -> Result<Reply, Error> {
        match self.client.take() {
            Some(client) => client.finish_stream(),
            None => Err(Error::Internal("a DATA writer finished twice")),
        }
    }

    fn client(&mut self) -> io::Result<&mut SmtpClient> {
        match self.client.as_deref_mut() {
            Some(client) => Ok(client),
            None => Err(io::Error::other(Error::Internal(
                "a DATA writer used after finish",
            ))),
        }
    }

    /// Writes out what is buffered.
    fn write_out(&mut self) -> io::Result<()> {
        let client = self.client()?;
        if let Err(err) = client.core.stream_ready() {
            return Err(self.failed(err));
        }
        let pending = client.core.stream_output();
        if pending.is_empty() {
            return Ok(());
        }
        let n = pending.len();
        match client.io.write(pending) {
            Ok(()) => {
                client.core.stream_wrote(n);
                Ok(())
            }
            Err(source) => {
                let err = client.core.stream_write_failed(source);
                Err(self.failed(err))
            }
        }
    }

    /// The writer's `io::Error` for `err`, the connection closed first when `err` left the
    /// session broken.
    fn failed(&mut self, err: Error) -> io::Error {
        if let Some(client) = self.client.as_deref_mut() {
            if client.core.stream_close(false) {
                client.io.close();
            }
        }
        io::Error::other(err)
    }
}

impl Write for DataWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.client()?.core.stream_full() {
            self.write_out()?;
        }
        let taken = self.client()?.core.stream_take(buf);
        taken.map_err(|err| self.failed(err))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()
    }
}

impl Drop for DataWriter<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if client.core.stream_close(true) {
                client.io.close();
            }
        }
    }
}

impl std::fmt::Debug for DataWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let buffered = self.client.as_ref().map(|c| c.core.stream_output().len());
        f.debug_struct("DataWriter")
            .field("buffered", &buffered)
            .finish()
    }
}

#[cfg(feature = "tokio")]
pub use self::tokio_writer::AsyncDataWriter;

#[cfg(feature = "tokio")]
mod tokio_writer {
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};

    use ::tokio::io::AsyncWrite;
    use ::tokio::time::Sleep;
    use smtp_proto::Reply;

    use crate::error::Error;
    use crate::timeouts::deadline_after;
    use crate::tokio::AsyncSmtpClient;

    /// The message after DATA, written with tokio's [`AsyncWrite`]: the async
    /// [`DataWriter`](crate::DataWriter), from
    /// [`AsyncSmtpClient::data_writer`](crate::tokio::AsyncSmtpClient::data_writer).
    ///
    /// The same rules: dot-stuffed as it goes, written 64 KiB at a time (`flush` writes what
    /// is buffered), each write within the write timeout; [`finish`](Self::finish) ends the
    /// message and returns the final reply. `shutdown` only flushes: it does not end the
    /// message, since only `finish` can return the reply.
    ///
    /// Dropped before `finish` (a task cancelled, a `select!` that chose another branch, a
    /// `finish` future dropped before its first poll), the writer abandons the message: the
    /// connection is dropped at once without the end of data and the client refuses every
    /// later call with [`Misuse::DataAbandoned`](crate::Misuse::DataAbandoned). A `finish`
    /// future dropped once it ran is a cancelled call like any other (see
    /// [Cancellation](crate::tokio::AsyncSmtpClient#cancellation)): the end of data may
    /// have reached the server.
    pub struct AsyncDataWriter<'a> {
        /// `None` once [`finish`](Self::finish) took it.
        client: Option<&'a mut AsyncSmtpClient>,
        /// The write timeout of the output being written (made on the first write, then
        /// reset); `armed` while a write or its flush is under way.
        timer: Option<Pin<Box<Sleep>>>,
        armed: bool,
    }

    impl<'a> AsyncDataWriter<'a> {
        pub(crate) fn new(client: &'a mut AsyncSmtpClient) -> AsyncDataWriter<'a> {
            AsyncDataWriter {
                client: Some(client),
                timer: None,
                armed: false,
            }
        }

        /// Ends the message (`CRLF.CRLF`, the CRLF only when needed) and waits for the
        /// final reply: the 2xx reply, or [`Error::Refused`] carrying the server's, as
        /// [`DataWriter::finish`](crate::DataWriter::finish).
        pub async fn finish(mut self) -> Result<Reply, Error> {
            match self.client.take() {
                Some(client) => client.finish_stream().await,
                None => Err(Error::Internal("a DATA writer finished twice")),
            }
        }

        fn client(&mut self) -> io::Result<&mut AsyncSmtpClient> {
            match self.client.as_deref_mut() {
                Some(client) => Ok(client),
                None => Err(io::Error::other(Error::Internal(
                    "a DATA writer used after finish",
                ))),
            }
        }

        /// Writes out what is buffered, then flushes the connection (TLS keeps records
        /// until flushed), all within the write timeout.
        fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let client = self.client()?;
            if let Err(err) = client.core.stream_ready() {
                return Poll::Ready(Err(self.failed(err)));
            }
            let source = match self.poll_io(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(source)) => source,
            };
            self.armed = false;
            let err = self.client()?.core.stream_write_failed(source);
            Poll::Ready(Err(self.failed(err)))
        }

        /// [`poll_write_out`](Self::poll_write_out)'s I/O: the socket's error, or a
        /// timeout.
        fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let Some(client) = self.client.as_deref_mut() else {
                return Poll::Ready(Ok(()));
            };
            loop {
                let pending = client.core.stream_output();
                if pending.is_empty() && !self.armed {
                    return Poll::Ready(Ok(()));
                }
                if !self.armed {
                    let deadline =
                        deadline_after(std::time::Instant::now(), client.io.write_timeout);
                    let deadline = ::tokio::time::Instant::from_std(deadline);
                    match &mut self.timer {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => self.timer = Some(Box::pin(::tokio::time::sleep_until(deadline))),
                    }
                    self.armed = true;
                }
                if pending.is_empty() {
                    // All written: once flushed, the write is over.
                    let flushed = ready_or_timeout(client.io.poll_flush(cx), &mut self.timer, cx);
                    if let Poll::Ready(Ok(())) = flushed {
                        self.armed = false;
                    }
                    return flushed;
                }
                let polled = client.io.poll_write(cx, pending);
                match ready_or_timeout(polled, &mut self.timer, cx) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => client.core.stream_wrote(n),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }

        /// The writer's `io::Error` for `err`, the connection closed first when `err` left
        /// the session broken.
        fn failed(&mut self, err: Error) -> io::Error {
            if let Some(client) = self.client.as_deref_mut() {
                if client.core.stream_close(false) {
                    client.io.close();
                }
            }
            io::Error::other(err)
        }
    }

    /// `polled`, or a timeout error when it is pending and `timer` has fired.
    fn ready_or_timeout<T>(
        polled: Poll<io::Result<T>>,
        timer: &mut Option<Pin<Box<Sleep>>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        let Poll::Pending = polled else {
            return polled;
        };
        match timer.as_mut().map(|t| t.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "write timed out",
            ))),
            _ => Poll::Pending,
        }
    }

    impl AsyncWrite for AsyncDataWriter<'_> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            if this.client()?.core.stream_full() {
                ready!(this.poll_write_out(cx))?;
            }
            let taken = this.client()?.core.stream_take(buf);
            Poll::Ready(taken.map_err(|err| this.failed(err)))
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_write_out(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_write_out(cx)
        }
    }

    impl Drop for AsyncDataWriter<'_> {
        fn drop(&mut self) {
            if let Some(client) = self.client.take() {
                if client.core.stream_close(true) {
                    client.io.close();
                }
            }
        }
    }

    impl std::fmt::Debug for AsyncDataWriter<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let buffered = self.client.as_ref().map(|c| c.core.stream_output().len());
            f.debug_struct("AsyncDataWriter")
                .field("buffered", &buffered)
                .finish()
        }
    }
}
