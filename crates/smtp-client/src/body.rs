//! The caller's body cut into chunks for the session, with one byte of read-ahead so the
//! last chunk is known to be the last.

use std::io;

use crate::error::Error;

/// Size of each chunk of the body read from the caller and pushed into the session.
pub const BODY_CHUNK: usize = 64 * 1024;

/// Cuts the caller's body into [`BODY_CHUNK`]-sized chunks and knows whether a chunk is the
/// last one (one byte of read-ahead), so the last chunk and the end of data go out together.
///
/// While [`needs_read`](Self::needs_read), the body is read into [`spare`](Self::spare);
/// then [`chunk`](Self::chunk) is pushed into the session and [`consumed`](Self::consumed)
/// called.
pub(crate) struct BodyChunks {
    buf: Box<[u8]>,
    len: usize,
    peek: [u8; 1],
    state: ChunkState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Filling,
    Peeking,
    Ready { last: bool },
    Done,
}

impl BodyChunks {
    pub(crate) fn new() -> BodyChunks {
        BodyChunks {
            buf: vec![0; BODY_CHUNK].into_boxed_slice(),
            len: 0,
            peek: [0],
            state: ChunkState::Filling,
        }
    }

    /// True until a chunk is ready: the next read goes into [`spare`](Self::spare).
    pub(crate) fn needs_read(&self) -> bool {
        matches!(self.state, ChunkState::Filling | ChunkState::Peeking)
    }

    /// Starts over for the next message's body, keeping the buffer.
    pub(crate) fn reset(&mut self) {
        self.len = 0;
        self.state = ChunkState::Filling;
    }

    /// Where the next read goes (empty when a chunk is ready).
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        match self.state {
            ChunkState::Filling => &mut self.buf[self.len..],
            ChunkState::Peeking => &mut self.peek,
            ChunkState::Ready { .. } | ChunkState::Done => &mut [],
        }
    }

    /// Records the result of a read into [`spare`](Self::spare).
    pub(crate) fn advance(&mut self, result: io::Result<usize>) -> Result<(), Error> {
        let n = match result {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(Error::Body(e)),
        };
        match self.state {
            ChunkState::Filling if n == 0 => self.state = ChunkState::Ready { last: true },
            ChunkState::Filling => {
                self.len += n.min(self.buf.len() - self.len);
                if self.len == self.buf.len() {
                    self.state = ChunkState::Peeking;
                }
            }
            ChunkState::Peeking => self.state = ChunkState::Ready { last: n == 0 },
            ChunkState::Ready { .. } | ChunkState::Done => {}
        }
        Ok(())
    }

    /// The chunk and whether it is the last one (an empty last chunk after the end).
    pub(crate) fn chunk(&self) -> (&[u8], bool) {
        match self.state {
            ChunkState::Ready { last } => (&self.buf[..self.len], last),
            _ => (&[], true),
        }
    }

    /// The chunk was pushed: start the next one with the byte read ahead.
    pub(crate) fn consumed(&mut self) {
        match self.state {
            ChunkState::Ready { last: false } => {
                self.buf[0] = self.peek[0];
                self.len = 1;
                self.state = if self.buf.len() == 1 {
                    ChunkState::Peeking
                } else {
                    ChunkState::Filling
                };
            }
            ChunkState::Ready { last: true } => {
                self.len = 0;
                self.state = ChunkState::Done;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(body: &[u8], read_size: usize) -> Vec<(Vec<u8>, bool)> {
        let mut chunks = BodyChunks::new();
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            while chunks.needs_read() {
                let spare = chunks.spare();
                let n = spare.len().min(read_size).min(body.len() - pos);
                spare[..n].copy_from_slice(&body[pos..pos + n]);
                pos += n;
                chunks.advance(Ok(n)).unwrap();
            }
            let (chunk, last) = chunks.chunk();
            out.push((chunk.to_vec(), last));
            chunks.consumed();
            if last {
                return out;
            }
        }
    }

    #[test]
    fn body_chunks_are_full_and_the_last_is_marked() {
        let body: Vec<u8> = (0..BODY_CHUNK * 2 + 10).map(|i| i as u8).collect();
        for read_size in [1000, 7, BODY_CHUNK, usize::MAX] {
            let got = chunks_of(&body, read_size);
            let lens: Vec<(usize, bool)> = got.iter().map(|(c, l)| (c.len(), *l)).collect();
            assert_eq!(lens, [(BODY_CHUNK, false), (BODY_CHUNK, false), (10, true)]);
            assert_eq!(got.concat_bytes(), body);
        }
    }

    #[test]
    fn a_body_of_exactly_one_chunk_is_one_last_chunk() {
        let body = vec![b'x'; BODY_CHUNK];
        let got = chunks_of(&body, 4096);
        assert_eq!(got.len(), 1);
        assert!(got[0].1);
        assert_eq!(got[0].0.len(), BODY_CHUNK);
        assert_eq!(chunks_of(b"", 10), vec![(Vec::new(), true)]);
    }

    trait ConcatBytes {
        fn concat_bytes(&self) -> Vec<u8>;
    }

    impl ConcatBytes for Vec<(Vec<u8>, bool)> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.iter().flat_map(|(c, _)| c.iter().copied()).collect()
        }
    }

    #[test]
    fn read_errors_are_body_errors_and_interrupts_are_retried() {
        let mut chunks = BodyChunks::new();
        let interrupted = io::Error::from(io::ErrorKind::Interrupted);
        assert!(chunks.advance(Err(interrupted)).is_ok());
        assert!(chunks.needs_read());
        let err = chunks
            .advance(Err(io::Error::other("disk on fire")))
            .unwrap_err();
        assert!(matches!(err, Error::Body(_)), "{err:?}");
    }

    // ----- DriverCore, driven without a socket ---------------------------------------
}
