//! A small SMTP client and a server factory shared by the unit tests of every module.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::config::DemoConfig;
use crate::server::DemoServer;

/// A line-at-a-time SMTP client over plain TCP, for tests.
pub(crate) struct Client {
    pub(crate) tcp: TcpStream,
    pub(crate) reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects to `server` and reads its greeting.
    pub(crate) fn connect(server: &DemoServer) -> Client {
        let tcp = TcpStream::connect(server.addr()).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let reader = BufReader::new(tcp.try_clone().expect("clone"));
        let mut c = Client { tcp, reader };
        let greeting = c.reply();
        assert!(greeting[0].starts_with("220 "), "{greeting:?}");
        c
    }

    fn send(&mut self, line: &str) {
        self.tcp.write_all(line.as_bytes()).expect("write");
        self.tcp.write_all(b"\r\n").expect("write");
    }

    /// The lines of one reply, CRLF removed.
    pub(crate) fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read");
            assert!(
                line.ends_with("\r\n"),
                "reply line not CRLF-ended: {line:?}"
            );
            line.truncate(line.len() - 2);
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line);
            if !more {
                return lines;
            }
        }
    }

    /// Sends `line` and returns the lines of its reply.
    pub(crate) fn cmd(&mut self, line: &str) -> Vec<String> {
        self.send(line);
        self.reply()
    }

    /// Sends `line` and returns the code of its reply.
    pub(crate) fn code(&mut self, line: &str) -> String {
        self.cmd(line).last().expect("a line")[..3].to_owned()
    }
}

/// A server with the default configuration on a port the kernel picks.
pub(crate) fn server() -> DemoServer {
    DemoServer::start(DemoConfig::new().port(0)).expect("start")
}
