//! Incremental server-sent-events framing: bytes in, whole events out, and
//! events back to bytes.

use bytes::{Buf, BytesMut};

use crate::plugins::bindings::SseEvent;

/// Splits a byte stream into events. Handles `\n` and `\r\n` line ends,
/// multi-line `data:`, comments, and events split across chunks. Each byte
/// is scanned once, however the stream is chunked.
#[derive(Default)]
pub struct SseParser {
    buf: BytesMut,
    /// Bytes of `buf` already known to hold no newline.
    scanned: usize,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feed `chunk`; complete events are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        self.buf.extend_from_slice(chunk);
        while let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            let nl = self.scanned + at;
            self.scanned = 0;
            let mut line = self.buf.split_to(nl + 1);
            line.truncate(nl);
            if line.last() == Some(&b'\r') {
                line.truncate(nl - 1);
            }
            self.line(&line, out);
        }
        self.scanned = self.buf.len();
    }

    /// The stream ended: an event missing only its blank line still counts.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.scanned = 0;
            self.line(&line, out);
        }
        self.dispatch(out);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }

    /// Bytes held for an event not complete yet: the caller bounds it.
    pub fn pending(&self) -> usize {
        self.buf.remaining() + self.data.as_ref().map_or(0, String::len)
    }
}

/// Append `event` in wire form to `out`.
pub fn write_event(event: &SseEvent, out: &mut Vec<u8>) {
    if let Some(name) = &event.event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in event.data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn splits_events_across_chunks() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        p.push(b"event: ping\r\ndata: {\"a\"", &mut out);
        assert!(out.is_empty());
        p.push(
            b":1}\r\n\r\n: comment\n\ndata: x\ndata: y\n\ndata: [DONE]",
            &mut out,
        );
        p.finish(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].event.as_deref(), Some("ping"));
        assert_eq!(out[0].data, "{\"a\":1}");
        assert_eq!(out[1].data, "x\ny");
        assert_eq!(out[2].data, "[DONE]");
        let mut wire = Vec::new();
        write_event(&out[0], &mut wire);
        assert_eq!(wire, b"event: ping\ndata: {\"a\":1}\n\n");
    }
}
