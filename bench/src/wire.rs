//! Just enough HTTP/1.1 for a load generator.
//!
//! Requests are encoded once and replayed byte for byte, so the client spends
//! its time on the socket, not on formatting. Responses are read with
//! `httparse` and framed by `Content-Length` or `Transfer-Encoding: chunked`;
//! the body is consumed and counted, and kept only on request (for
//! diagnostics), so a complete body is checked without copying it. Each
//! response also carries when its first body byte arrived, for
//! time-to-first-byte of streamed bodies.

use std::fmt;
use std::io;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Most response headers we accept; the mock and the proxies send < 15.
const MAX_HEADERS: usize = 64;
/// Cap on a response head, so a misbehaving peer cannot grow the buffer
/// without bound while we wait for `\r\n\r\n`.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Encodes one HTTP/1.1 request with a body; `Content-Length` and `Host` are
/// added here so callers cannot get framing wrong.
pub fn encode_request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// What went wrong reading a response.
#[derive(Debug)]
pub enum WireError {
    Io(io::Error),
    /// The peer closed the connection before the response was complete;
    /// `read_any` says whether any byte of this response had arrived.
    Closed {
        read_any: bool,
    },
    Malformed(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "i/o error: {e}"),
            WireError::Closed { read_any: false } => {
                f.write_str("connection closed before any response byte")
            }
            WireError::Closed { read_any: true } => {
                f.write_str("connection closed in the middle of a response")
            }
            WireError::Malformed(m) => write!(f, "malformed response: {m}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

/// One parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Decoded body length (chunk framing excluded).
    pub body_len: usize,
    /// The server asked to close, or the body was delimited by close: the
    /// connection must not be reused.
    pub must_close: bool,
    /// The body, only when the reader was asked to keep it.
    pub body: Option<Vec<u8>>,
    /// When the socket read that delivered the first byte after the head
    /// returned (for a chunked body that byte starts the first chunk-size
    /// line, sent with the first data); `None` for an empty body.
    pub first_body_at: Option<Instant>,
}

/// How the body of a response is delimited (RFC 9112 §6.3, the subset we
/// need: no responses to HEAD, no 204/304 from these peers).
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Reads consecutive responses from one connection, keeping bytes that
/// arrive early for the next response.
pub struct ResponseReader {
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    pos: usize,
    keep_body: bool,
    /// When the last read that returned bytes completed.
    last_fill: Option<Instant>,
    /// Between the end of a head and the first body byte: the next read
    /// that returns bytes delivers that byte.
    awaiting_body: bool,
    first_body_at: Option<Instant>,
}

impl ResponseReader {
    pub fn new(keep_body: bool) -> Self {
        ResponseReader {
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            keep_body,
            last_fill: None,
            awaiting_body: false,
            first_body_at: None,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more bytes from `stream`; `Ok(false)` on EOF.
    async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<bool> {
        // Compact first so the buffer does not creep forward forever.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        // `read_buf` fills spare capacity, so nothing is zeroed per read.
        self.buf.reserve(READ_CHUNK);
        if stream.read_buf(&mut self.buf).await? == 0 {
            return Ok(false);
        }
        let now = Instant::now();
        self.last_fill = Some(now);
        if self.awaiting_body {
            self.awaiting_body = false;
            self.first_body_at = Some(now);
        }
        Ok(true)
    }

    /// Like `fill`, but EOF is an error: we are inside a response.
    async fn fill_or_closed<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<(), WireError> {
        if self.fill(stream).await? {
            Ok(())
        } else {
            Err(WireError::Closed { read_any: true })
        }
    }

    /// Reads one complete response (skipping any interim 1xx responses).
    pub async fn read_response<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Response, WireError> {
        let mut read_any = !self.pending().is_empty();
        self.awaiting_body = false;
        loop {
            let head = loop {
                match parse_head(self.pending())? {
                    Some(head) => break head,
                    None if self.pending().len() > MAX_HEAD_BYTES => {
                        return Err(WireError::Malformed("response head too large".into()));
                    }
                    None => {
                        if !self.fill(stream).await? {
                            return Err(WireError::Closed { read_any });
                        }
                        read_any = true;
                    }
                }
            };
            self.pos += head.len;
            if (100..200).contains(&head.status) {
                continue;
            }
            // The first body byte came with the head, or comes with the
            // next read (if there is a body at all).
            self.first_body_at = None;
            if !matches!(head.framing, Framing::Length(0)) {
                if self.pending().is_empty() {
                    self.awaiting_body = true;
                } else {
                    self.first_body_at = self.last_fill;
                }
            }
            let mut body = self.keep_body.then(Vec::new);
            let body_len = match head.framing {
                Framing::Length(n) => self.read_exact_body(stream, n, &mut body).await?,
                Framing::Chunked => self.read_chunked_body(stream, &mut body).await?,
                Framing::UntilClose => self.read_until_close(stream, &mut body).await?,
            };
            let must_close = head.close || matches!(head.framing, Framing::UntilClose);
            self.awaiting_body = false;
            return Ok(Response {
                status: head.status,
                body_len,
                must_close,
                body,
                first_body_at: self.first_body_at.take(),
            });
        }
    }

    /// Consumes exactly `n` body bytes.
    async fn read_exact_body<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        n: usize,
        body: &mut Option<Vec<u8>>,
    ) -> Result<usize, WireError> {
        while self.pending().len() < n {
            self.fill_or_closed(stream).await?;
        }
        if let Some(b) = body {
            b.extend_from_slice(&self.pending()[..n]);
        }
        self.pos += n;
        Ok(n)
    }

    async fn read_chunked_body<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        body: &mut Option<Vec<u8>>,
    ) -> Result<usize, WireError> {
        let mut total = 0usize;
        loop {
            let (consumed, size) = loop {
                match httparse::parse_chunk_size(self.pending()) {
                    Ok(httparse::Status::Complete((consumed, size))) => break (consumed, size),
                    Ok(httparse::Status::Partial) => self.fill_or_closed(stream).await?,
                    Err(_) => return Err(WireError::Malformed("bad chunk size line".into())),
                }
            };
            self.pos += consumed;
            if size == 0 {
                self.skip_trailers(stream).await?;
                return Ok(total);
            }
            let size = usize::try_from(size)
                .map_err(|_| WireError::Malformed("chunk size overflows usize".into()))?;
            // Chunk data plus its trailing CRLF.
            while self.pending().len() < size + 2 {
                self.fill_or_closed(stream).await?;
            }
            if &self.pending()[size..size + 2] != b"\r\n" {
                return Err(WireError::Malformed("chunk not followed by CRLF".into()));
            }
            if let Some(b) = body {
                b.extend_from_slice(&self.pending()[..size]);
            }
            self.pos += size + 2;
            total += size;
        }
    }

    /// Skips trailer fields after the last chunk, up to the empty line.
    async fn skip_trailers<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<(), WireError> {
        loop {
            match find_crlf(self.pending()) {
                Some(0) => {
                    self.pos += 2;
                    return Ok(());
                }
                Some(i) => self.pos += i + 2,
                None if self.pending().len() > MAX_HEAD_BYTES => {
                    return Err(WireError::Malformed("trailers too large".into()));
                }
                None => self.fill_or_closed(stream).await?,
            }
        }
    }

    async fn read_until_close<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        body: &mut Option<Vec<u8>>,
    ) -> Result<usize, WireError> {
        while self.fill(stream).await? {}
        let n = self.pending().len();
        if let Some(b) = body {
            b.extend_from_slice(self.pending());
        }
        self.pos += n;
        Ok(n)
    }
}

struct Head {
    /// Bytes of the head including the final blank line.
    len: usize,
    status: u16,
    framing: Framing,
    close: bool,
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// Parses a response head; `Ok(None)` if more bytes are needed.
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WireError::Malformed(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut content_length = None;
    let mut chunked = false;
    // HTTP/1.0 closes by default unless told otherwise.
    let mut close = http10;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| WireError::Malformed("bad content-length".into()))?;
            content_length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = contains_token(h.value, "chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, "close") {
                close = true;
            } else if contains_token(h.value, "keep-alive") {
                close = false;
            }
        }
    }
    // Chunked wins over Content-Length (RFC 9112 §6.3 rule 3).
    let framing = match (chunked, content_length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::UntilClose,
    };
    Ok(Some(Head {
        len,
        status,
        framing,
        close,
    }))
}

fn contains_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

#[cfg(test)]
mod test {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Reads every response from `input`, delivered in `step`-byte pieces to
    /// exercise the partial-read paths.
    fn read_all(input: &[u8], step: usize, keep_body: bool) -> Vec<Result<Response, String>> {
        block_on(async {
            let (mut client, mut server) = tokio::io::duplex(step);
            let data = input.to_vec();
            let writer = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                for piece in data.chunks(step) {
                    server.write_all(piece).await.unwrap();
                }
            });
            let mut reader = ResponseReader::new(keep_body);
            let mut out = Vec::new();
            loop {
                match reader.read_response(&mut client).await {
                    Ok(r) => out.push(Ok(r)),
                    Err(WireError::Closed { read_any: false }) => break,
                    Err(e) => {
                        out.push(Err(e.to_string()));
                        break;
                    }
                }
            }
            writer.await.unwrap();
            out
        })
    }

    #[test]
    fn encodes_request_with_length_and_host() {
        let req = encode_request(
            "POST",
            "127.0.0.1:1",
            "/v1/x",
            &[("content-type", "application/json")],
            b"{}",
        );
        assert_eq!(
            req,
            b"POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1:1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn reads_keep_alive_content_length_responses_back_to_back() {
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let input = [one.as_slice(), one.as_slice()].concat();
        for step in [1, 3, 1000] {
            let got = read_all(&input, step, true);
            assert_eq!(got.len(), 2, "step {step}");
            for r in got {
                let r = r.unwrap();
                assert_eq!((r.status, r.body_len, r.must_close), (200, 5, false));
                assert_eq!(r.body.as_deref(), Some(b"hello".as_slice()));
            }
        }
    }

    #[test]
    fn reads_chunked_body_with_trailers() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\na;x=1\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        for step in [1, 7, 1000] {
            let got = read_all(input, step, true);
            let first = got[0].as_ref().unwrap();
            assert_eq!(first.body_len, 13);
            assert_eq!(first.body.as_deref(), Some(b"abc0123456789".as_slice()));
            assert_eq!(got[1].as_ref().unwrap().status, 404);
        }
    }

    #[test]
    fn connection_close_and_close_delimited_bodies_are_not_reusable() {
        let got = read_all(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
            1000,
            false,
        );
        assert!(got[0].as_ref().unwrap().must_close);
        let got = read_all(b"HTTP/1.1 200 OK\r\n\r\nuntil close", 4, false);
        let r = got[0].as_ref().unwrap();
        assert_eq!((r.body_len, r.must_close), (11, true));
    }

    #[test]
    fn truncated_body_is_an_error() {
        let got = read_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            1000,
            false,
        );
        assert_eq!(
            got[0].as_ref().unwrap_err(),
            "connection closed in the middle of a response"
        );
    }

    #[test]
    fn first_body_byte_is_timestamped_when_it_arrives() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            use tokio::io::AsyncWriteExt;
            let (mut client, mut server) = tokio::io::duplex(4096);
            let writer = tokio::spawn(async move {
                server
                    .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                server.write_all(b"2\r\nhi\r\n0\r\n\r\n").await.unwrap();
                server
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
            });
            let start = Instant::now();
            let mut reader = ResponseReader::new(false);
            let r = reader.read_response(&mut client).await.unwrap();
            let first = r.first_body_at.expect("body timestamp");
            assert!(first.duration_since(start) >= std::time::Duration::from_millis(25));
            let empty = reader.read_response(&mut client).await.unwrap();
            assert_eq!((empty.status, empty.first_body_at), (204, None));
            writer.await.unwrap();
        });
        // Body in the same read as the head: stamped by that read.
        let got = read_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            1000,
            false,
        );
        assert!(got[0].as_ref().unwrap().first_body_at.is_some());
    }

    #[test]
    fn skips_interim_responses() {
        let got = read_all(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            5,
            false,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().status, 200);
    }
}
