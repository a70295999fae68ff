//! The client API the tests use, with the blocking signatures ([`Driver`]), for the
//! blocking [`SmtpClient`] and, with feature `tokio`, for the async client run to completion
//! on a current-thread runtime (`Tokio`). The trait's methods are the clients' own, one
//! line each, so a test exercises exactly the public API of each driver.

use std::io::{Read, Write};
use std::net::SocketAddr;

use smtp_client::{
    BatchSummary, ClientConfig, DataWriter, Delivery, Envelope, Error, MessageResult,
    RecipientsReport, SendReport, SmtpClient,
};
use smtp_proto::{
    Capabilities, Command, Domain, ForwardPath, MailParams, RcptParams, Reply, ReversePath, Text,
    Xclient, Xforward,
};

/// The client API the tests use, with the blocking signatures.
#[allow(missing_docs)] // Each method is the client's method of the same name.
pub trait Driver: Sized + std::fmt::Debug {
    fn connect(config: ClientConfig) -> Result<Self, Error>;
    fn banner(&self) -> Option<&Reply>;
    fn domain(&self) -> Option<String>;
    fn capabilities(&self) -> Option<&Capabilities>;
    fn supports(&self, keyword: &str) -> bool;
    fn is_encrypted(&self) -> bool;
    fn last_reply(&self) -> Option<&Reply>;
    fn peer_addr(&self) -> SocketAddr;
    fn hello(&mut self, domain: Option<&Domain>) -> Result<Reply, Error>;
    fn xclient(&mut self, attrs: &Xclient) -> Result<Reply, Error>;
    fn xforward(&mut self, attrs: &Xforward) -> Result<Reply, Error>;
    fn mail(&mut self, from: &ReversePath, params: &MailParams) -> Result<Reply, Error>;
    fn rcpt(&mut self, to: &ForwardPath, params: &RcptParams) -> Result<Reply, Error>;
    fn recipients(&mut self, list: &[(ForwardPath, RcptParams)])
        -> Result<RecipientsReport, Error>;
    fn data(&mut self) -> Result<Reply, Error>;
    fn datasend(&mut self, bytes: &[u8]) -> Result<(), Error>;
    fn dataend(&mut self) -> Result<Reply, Error>;
    /// The client's DATA writer, with the blocking signatures.
    type Writer<'a>: DataWrite
    where
        Self: 'a;
    fn data_writer(&mut self) -> Result<Self::Writer<'_>, Error>;
    fn verify(&mut self, address: &Text) -> Result<Reply, Error>;
    fn reset(&mut self) -> Result<Reply, Error>;
    fn noop(&mut self) -> Result<Reply, Error>;
    fn send_to_terminal(&mut self, from: &ReversePath) -> Result<Reply, Error>;
    fn send_or_mail(&mut self, from: &ReversePath) -> Result<Reply, Error>;
    fn send_and_mail(&mut self, from: &ReversePath) -> Result<Reply, Error>;
    fn command(&mut self, command: &Command<'_>) -> Result<Reply, Error>;
    fn quit(&mut self) -> Result<Option<Reply>, Error>;
    fn send(&mut self, envelope: &Envelope, body: &[u8]) -> Result<SendReport, Error>;
    /// `send_batch` over in-memory bodies: the summary and every message's result, in the
    /// order they were handed out.
    fn send_batch(
        &mut self,
        messages: Vec<(Envelope, Vec<u8>)>,
    ) -> Result<(BatchSummary, Vec<MessageResult>), Error>;
    /// `send_batch` that gives the recipients a message's transaction deferred (`452 4.5.3`)
    /// the same message again, as a new message of the same batch.
    fn send_batch_resending(
        &mut self,
        messages: Vec<(Envelope, Vec<u8>)>,
    ) -> Result<(BatchSummary, Vec<MessageResult>), Error>;
    /// `send_to_all`: as many transactions as the server's recipient limit needs.
    fn send_to_all(&mut self, envelope: &Envelope, body: &[u8]) -> Result<Delivery, Error>;
    /// Sends a body read from `reader` as it goes (constant memory).
    fn send_stream(
        &mut self,
        envelope: &Envelope,
        reader: impl Read + Send + Unpin,
    ) -> Result<SendReport, Error>;
}

/// A client's DATA writer, with the blocking signatures: `Write`, and `finish`. Dropping
/// it drops the client's writer.
pub trait DataWrite: Write + std::fmt::Debug {
    /// The writer's `finish`.
    fn finish(self) -> Result<Reply, Error>;
}

impl DataWrite for DataWriter<'_> {
    fn finish(self) -> Result<Reply, Error> {
        DataWriter::finish(self)
    }
}

/// The blocking driver: the client itself.
pub type Blocking = SmtpClient;

impl Driver for SmtpClient {
    fn connect(config: ClientConfig) -> Result<Self, Error> {
        SmtpClient::connect(config)
    }
    fn banner(&self) -> Option<&Reply> {
        self.banner()
    }
    fn domain(&self) -> Option<String> {
        self.domain()
    }
    fn capabilities(&self) -> Option<&Capabilities> {
        self.capabilities()
    }
    fn supports(&self, keyword: &str) -> bool {
        self.supports(keyword)
    }
    fn is_encrypted(&self) -> bool {
        self.is_encrypted()
    }
    fn last_reply(&self) -> Option<&Reply> {
        self.last_reply()
    }
    fn peer_addr(&self) -> SocketAddr {
        self.peer_addr()
    }
    fn hello(&mut self, domain: Option<&Domain>) -> Result<Reply, Error> {
        self.hello(domain)
    }
    fn xclient(&mut self, attrs: &Xclient) -> Result<Reply, Error> {
        self.xclient(attrs)
    }
    fn xforward(&mut self, attrs: &Xforward) -> Result<Reply, Error> {
        self.xforward(attrs)
    }
    fn mail(&mut self, from: &ReversePath, params: &MailParams) -> Result<Reply, Error> {
        self.mail(from, params)
    }
    fn rcpt(&mut self, to: &ForwardPath, params: &RcptParams) -> Result<Reply, Error> {
        self.rcpt(to, params)
    }
    fn recipients(
        &mut self,
        list: &[(ForwardPath, RcptParams)],
    ) -> Result<RecipientsReport, Error> {
        self.recipients(list)
    }
    fn data(&mut self) -> Result<Reply, Error> {
        self.data()
    }
    fn datasend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.datasend(bytes)
    }
    fn dataend(&mut self) -> Result<Reply, Error> {
        self.dataend()
    }
    type Writer<'a> = DataWriter<'a>;
    fn data_writer(&mut self) -> Result<DataWriter<'_>, Error> {
        self.data_writer()
    }
    fn verify(&mut self, address: &Text) -> Result<Reply, Error> {
        self.verify(address)
    }
    fn reset(&mut self) -> Result<Reply, Error> {
        self.reset()
    }
    fn noop(&mut self) -> Result<Reply, Error> {
        self.noop()
    }
    fn send_to_terminal(&mut self, from: &ReversePath) -> Result<Reply, Error> {
        self.send_to_terminal(from)
    }
    fn send_or_mail(&mut self, from: &ReversePath) -> Result<Reply, Error> {
        self.send_or_mail(from)
    }
    fn send_and_mail(&mut self, from: &ReversePath) -> Result<Reply, Error> {
        self.send_and_mail(from)
    }
    fn command(&mut self, command: &Command<'_>) -> Result<Reply, Error> {
        self.command(command)
    }
    fn quit(&mut self) -> Result<Option<Reply>, Error> {
        self.quit()
    }
    fn send(&mut self, envelope: &Envelope, body: &[u8]) -> Result<SendReport, Error> {
        self.send(envelope, body)
    }
    fn send_to_all(&mut self, envelope: &Envelope, body: &[u8]) -> Result<Delivery, Error> {
        self.send_to_all(envelope, std::io::Cursor::new(body))
    }
    fn send_batch(
        &mut self,
        messages: Vec<(Envelope, Vec<u8>)>,
    ) -> Result<(BatchSummary, Vec<MessageResult>), Error> {
        let mut results = Vec::new();
        let messages = messages
            .into_iter()
            .map(|(e, b)| (e, std::io::Cursor::new(b)));
        let summary = self.send_batch(messages, |r| results.push(r))?;
        Ok((summary, results))
    }
    fn send_batch_resending(
        &mut self,
        messages: Vec<(Envelope, Vec<u8>)>,
    ) -> Result<(BatchSummary, Vec<MessageResult>), Error> {
        let feed = Resending::new(messages);
        let summary = self.send_batch(feed.messages(), feed.on_done())?;
        Ok((summary, feed.results()))
    }
    fn send_stream(
        &mut self,
        envelope: &Envelope,
        reader: impl Read + Send + Unpin,
    ) -> Result<SendReport, Error> {
        self.send(envelope, reader)
    }
}

#[cfg(feature = "tokio")]
pub use self::tokio_driver::{Tokio, TokioWriter};

#[cfg(feature = "tokio")]
mod tokio_driver {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use smtp_client::tokio::{AsyncDataWriter, AsyncSmtpClient};
    use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
    use tokio::runtime::Runtime;

    use super::*;

    /// The async client, each call run to completion on its own current-thread runtime.
    #[derive(Debug)]
    pub struct Tokio {
        pub(crate) rt: Runtime,
        pub(crate) client: AsyncSmtpClient,
    }

    impl Tokio {
        /// A current-thread runtime with I/O and time enabled.
        pub fn runtime() -> Runtime {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime")
        }
    }

    /// The async client's DATA writer, each call run to completion on the client's
    /// runtime.
    #[derive(Debug)]
    pub struct TokioWriter<'a> {
        rt: &'a Runtime,
        writer: AsyncDataWriter<'a>,
    }

    impl Write for TokioWriter<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.rt.block_on(self.writer.write(buf))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.rt.block_on(self.writer.flush())
        }
    }

    impl DataWrite for TokioWriter<'_> {
        fn finish(self) -> Result<Reply, Error> {
            self.rt.block_on(self.writer.finish())
        }
    }

    /// A blocking `Read` as an `AsyncRead` (the tests read from memory: it never blocks).
    struct FromRead<R>(R);

    impl<R: Read + Unpin> AsyncRead for FromRead<R> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let n = self.0.read(buf.initialize_unfilled())?;
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
    }

    impl Driver for Tokio {
        fn connect(config: ClientConfig) -> Result<Self, Error> {
            let rt = Tokio::runtime();
            let client = rt.block_on(AsyncSmtpClient::connect(config))?;
            Ok(Tokio { rt, client })
        }
        fn banner(&self) -> Option<&Reply> {
            self.client.banner()
        }
        fn domain(&self) -> Option<String> {
            self.client.domain()
        }
        fn capabilities(&self) -> Option<&Capabilities> {
            self.client.capabilities()
        }
        fn supports(&self, keyword: &str) -> bool {
            self.client.supports(keyword)
        }
        fn is_encrypted(&self) -> bool {
            self.client.is_encrypted()
        }
        fn last_reply(&self) -> Option<&Reply> {
            self.client.last_reply()
        }
        fn peer_addr(&self) -> SocketAddr {
            self.client.peer_addr()
        }
        fn hello(&mut self, domain: Option<&Domain>) -> Result<Reply, Error> {
            self.rt.block_on(self.client.hello(domain))
        }
        fn xclient(&mut self, attrs: &Xclient) -> Result<Reply, Error> {
            self.rt.block_on(self.client.xclient(attrs))
        }
        fn xforward(&mut self, attrs: &Xforward) -> Result<Reply, Error> {
            self.rt.block_on(self.client.xforward(attrs))
        }
        fn mail(&mut self, from: &ReversePath, params: &MailParams) -> Result<Reply, Error> {
            self.rt.block_on(self.client.mail(from, params))
        }
        fn rcpt(&mut self, to: &ForwardPath, params: &RcptParams) -> Result<Reply, Error> {
            self.rt.block_on(self.client.rcpt(to, params))
        }
        fn recipients(
            &mut self,
            list: &[(ForwardPath, RcptParams)],
        ) -> Result<RecipientsReport, Error> {
            self.rt.block_on(self.client.recipients(list))
        }
        fn data(&mut self) -> Result<Reply, Error> {
            self.rt.block_on(self.client.data())
        }
        fn datasend(&mut self, bytes: &[u8]) -> Result<(), Error> {
            self.rt.block_on(self.client.datasend(bytes))
        }
        fn dataend(&mut self) -> Result<Reply, Error> {
            self.rt.block_on(self.client.dataend())
        }
        type Writer<'a> = TokioWriter<'a>;
        fn data_writer(&mut self) -> Result<TokioWriter<'_>, Error> {
            let Tokio { rt, client } = self;
            let writer = rt.block_on(client.data_writer())?;
            Ok(TokioWriter { rt, writer })
        }
        fn verify(&mut self, address: &Text) -> Result<Reply, Error> {
            self.rt.block_on(self.client.verify(address))
        }
        fn reset(&mut self) -> Result<Reply, Error> {
            self.rt.block_on(self.client.reset())
        }
        fn noop(&mut self) -> Result<Reply, Error> {
            self.rt.block_on(self.client.noop())
        }
        fn send_to_terminal(&mut self, from: &ReversePath) -> Result<Reply, Error> {
            self.rt.block_on(self.client.send_to_terminal(from))
        }
        fn send_or_mail(&mut self, from: &ReversePath) -> Result<Reply, Error> {
            self.rt.block_on(self.client.send_or_mail(from))
        }
        fn send_and_mail(&mut self, from: &ReversePath) -> Result<Reply, Error> {
            self.rt.block_on(self.client.send_and_mail(from))
        }
        fn command(&mut self, command: &Command<'_>) -> Result<Reply, Error> {
            self.rt.block_on(self.client.command(command))
        }
        fn quit(&mut self) -> Result<Option<Reply>, Error> {
            self.rt.block_on(self.client.quit())
        }
        fn send(&mut self, envelope: &Envelope, body: &[u8]) -> Result<SendReport, Error> {
            self.rt.block_on(self.client.send(envelope, body))
        }
        fn send_batch(
            &mut self,
            messages: Vec<(Envelope, Vec<u8>)>,
        ) -> Result<(BatchSummary, Vec<MessageResult>), Error> {
            let mut results = Vec::new();
            let messages = messages
                .into_iter()
                .map(|(e, b)| (e, std::io::Cursor::new(b)));
            let summary = self
                .rt
                .block_on(self.client.send_batch(messages, |r| results.push(r)))?;
            Ok((summary, results))
        }
        fn send_batch_resending(
            &mut self,
            messages: Vec<(Envelope, Vec<u8>)>,
        ) -> Result<(BatchSummary, Vec<MessageResult>), Error> {
            let feed = Resending::new(messages);
            let summary = self
                .rt
                .block_on(self.client.send_batch(feed.messages(), feed.on_done()))?;
            Ok((summary, feed.results()))
        }
        fn send_to_all(&mut self, envelope: &Envelope, body: &[u8]) -> Result<Delivery, Error> {
            let body = std::io::Cursor::new(body);
            self.rt.block_on(self.client.send_to_all(envelope, body))
        }
        fn send_stream(
            &mut self,
            envelope: &Envelope,
            reader: impl Read + Send + Unpin,
        ) -> Result<SendReport, Error> {
            self.rt
                .block_on(self.client.send(envelope, FromRead(reader)))
        }
    }
}

/// The messages of a batch that grows: a message accepted for only some recipients because
/// the rest were past the server's limit (`452 4.5.3`) is queued again for those.
#[derive(Clone)]
pub struct Resending {
    state: std::sync::Arc<std::sync::Mutex<ResendState>>,
}

#[derive(Default)]
struct ResendState {
    queue: std::collections::VecDeque<(Envelope, Vec<u8>)>,
    /// The sender and body of each message given so far, by batch index.
    given: Vec<(smtp_proto::ReversePath, Vec<u8>)>,
    results: Vec<MessageResult>,
}

impl Resending {
    /// A batch of `messages` to start with.
    pub fn new(messages: Vec<(Envelope, Vec<u8>)>) -> Resending {
        let state = ResendState {
            queue: messages.into(),
            ..ResendState::default()
        };
        Resending {
            state: std::sync::Arc::new(std::sync::Mutex::new(state)),
        }
    }

    /// The batch's messages, the queued-again ones included.
    pub fn messages(
        &self,
    ) -> impl Iterator<Item = (Envelope, std::io::Cursor<Vec<u8>>)> + Unpin + Send {
        let state = self.state.clone();
        std::iter::from_fn(move || {
            let mut s = state.lock().unwrap();
            let (envelope, body) = s.queue.pop_front()?;
            s.given.push((envelope.from().clone(), body.clone()));
            Some((envelope, std::io::Cursor::new(body)))
        })
    }

    /// The callback: keeps each result, queues deferred recipients again.
    pub fn on_done(&self) -> impl FnMut(MessageResult) + Unpin + Send {
        let state = self.state.clone();
        move |result| {
            let mut s = state.lock().unwrap();
            if let smtp_client::MessageState::Accepted(report) = &result.state {
                if !report.deferred.is_empty() {
                    let (from, body) = s.given[result.index].clone();
                    let to = report.deferred.iter().map(|d| d.recipient.clone());
                    s.queue.push_back((Envelope::new(from, to), body));
                }
            }
            s.results.push(result);
        }
    }

    /// Every result, in the order they were handed out.
    pub fn results(&self) -> Vec<MessageResult> {
        std::mem::take(&mut self.state.lock().unwrap().results)
    }
}
