//! The client API the tests use, with the blocking signatures ([`Driver`]), for the
//! blocking [`SmtpClient`] and, with feature `tokio`, for the async client run to completion
//! on a current-thread runtime (`Tokio`). The trait's methods are the clients' own, one
//! line each, so a test exercises exactly the public API of each driver.

use std::io::Read;
use std::net::SocketAddr;

use smtp_client::{ClientConfig, Envelope, Error, RecipientsReport, SendReport, SmtpClient};
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
    fn verify(&mut self, address: &Text) -> Result<Reply, Error>;
    fn reset(&mut self) -> Result<Reply, Error>;
    fn noop(&mut self) -> Result<Reply, Error>;
    fn send_to_terminal(&mut self, from: &ReversePath) -> Result<Reply, Error>;
    fn send_or_mail(&mut self, from: &ReversePath) -> Result<Reply, Error>;
    fn send_and_mail(&mut self, from: &ReversePath) -> Result<Reply, Error>;
    fn command(&mut self, command: &Command<'_>) -> Result<Reply, Error>;
    fn quit(&mut self) -> Result<Option<Reply>, Error>;
    fn send(&mut self, envelope: &Envelope, body: &[u8]) -> Result<SendReport, Error>;
    /// Sends a body read from `reader` as it goes (constant memory).
    fn send_stream(
        &mut self,
        envelope: &Envelope,
        reader: impl Read + Send + Unpin,
    ) -> Result<SendReport, Error>;
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
    fn send_stream(
        &mut self,
        envelope: &Envelope,
        reader: impl Read + Send + Unpin,
    ) -> Result<SendReport, Error> {
        self.send(envelope, reader)
    }
}

#[cfg(feature = "tokio")]
pub use self::tokio_driver::Tokio;

#[cfg(feature = "tokio")]
mod tokio_driver {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use smtp_client::tokio::AsyncSmtpClient;
    use tokio::io::{AsyncRead, ReadBuf};
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
