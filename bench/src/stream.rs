//! The streaming scenario: time to first byte and time to the end of an
//! SSE stream, one client on one keep-alive connection (concurrency 1).
//!
//! Every stream is read whole and checked (status 200, OpenAI chunks whose
//! delta contents concatenate to the expected reply, ending with
//! `data: [DONE]`), so a translated stream that is fast but wrong counts as
//! an error, not as a good figure. The check runs after the end of the
//! stream is timestamped, so it is not part of the measured time.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::Value;

use crate::loadgen::{Connection, RunConfig, connected};
use crate::wire::Response;

/// Distinct error messages kept per run.
const MAX_ERROR_SAMPLES: usize = 3;
/// Words of the response body quoted in an error message.
const SHOWN_BYTES: usize = 300;

/// Words the client's prompt is made of; the mock echoes them one SSE
/// chunk per word, so the prompt length sets the number of chunks.
const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
];

/// A prompt of `n` words (cycling through a fixed list), the last one an
/// email address so a bound PII redactor has something to pseudonymize
/// and restore in the stream: plain ASCII, so it needs no escaping, and
/// every word is one chunk of the mock's reply.
pub fn prompt(n: usize) -> String {
    let mut words: Vec<&str> = WORDS
        .iter()
        .cycle()
        .take(n.saturating_sub(1))
        .copied()
        .collect();
    if n > 0 {
        words.push(crate::payloads::EMAIL);
    }
    words.join(" ")
}

/// What the mock provider answers to `prompt`, in either API shape.
pub fn expected_reply(prompt: &str) -> String {
    format!("Mock reply to: {}", prompt.trim())
}

/// Content chunks the mock streams for `reply`: one per word.
pub fn content_chunks(reply: &str) -> usize {
    reply.split_whitespace().count()
}

/// An OpenAI-shaped streaming chat completion request body.
pub fn chat_body(model: &str, prompt: &str) -> String {
    serde_json::json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": prompt}],
    })
    .to_string()
}

/// Outcome of one streaming run.
#[derive(Debug, Default)]
pub struct StreamRunResult {
    /// Request written → first body byte, per measured stream, in ns.
    pub ttfb_ns: Vec<u64>,
    /// Request written → end of the stream, per measured stream, in ns.
    pub total_ns: Vec<u64>,
    /// Fewest and most `data:` events seen in one valid stream.
    pub events: Option<(usize, usize)>,
    /// Valid streams over the whole run, warmup included.
    pub served: u64,
    /// Failed streams and connects over the whole run, warmup included.
    pub errors: u64,
    pub error_samples: Vec<String>,
}

impl StreamRunResult {
    fn record_error(&mut self, msg: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES && !self.error_samples.contains(&msg) {
            self.error_samples.push(msg);
        }
    }

    fn record_events(&mut self, n: usize) {
        self.events = Some(match self.events {
            Some((lo, hi)) => (lo.min(n), hi.max(n)),
            None => (n, n),
        });
    }
}

fn shown(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(SHOWN_BYTES)]).into_owned()
}

/// Checks one streamed response; returns the number of `data:` events.
pub fn check_stream(resp: &Response, expected: &str) -> Result<usize, String> {
    let body = resp.body.as_deref().unwrap_or_default();
    if resp.status != 200 {
        return Err(format!("status {}: {}", resp.status, shown(body)));
    }
    let text = std::str::from_utf8(body).map_err(|_| "stream is not UTF-8".to_string())?;
    let mut events = 0;
    let mut done = false;
    let mut content = String::new();
    for line in text.lines() {
        let Some(payload) = line.strip_prefix("data:") else {
            continue;
        };
        events += 1;
        let payload = payload.trim();
        if done {
            return Err("data after [DONE]".into());
        }
        if payload == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(payload).map_err(|e| {
            format!(
                "bad JSON in event {events}: {e}: {}",
                shown(payload.as_bytes())
            )
        })?;
        if v.get("error").is_some() {
            return Err(format!("error event: {}", shown(payload.as_bytes())));
        }
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
    }
    if !done || !text.trim_end().ends_with("data: [DONE]") {
        return Err(format!(
            "stream does not end with data: [DONE] ({events} events): {}",
            shown(&body[body.len().saturating_sub(SHOWN_BYTES)..])
        ));
    }
    if content != expected {
        return Err(format!(
            "content mismatch: got {:?}",
            shown(content.as_bytes())
        ));
    }
    Ok(events)
}

/// Streams `request` back to back on one keep-alive connection from
/// `warmup` until `warmup + duration` (`cfg.concurrency` is ignored: this
/// scenario is about latency). Must be called inside a tokio runtime.
pub async fn run(
    addr: SocketAddr,
    request: &[u8],
    expected: &str,
    cfg: &RunConfig,
) -> StreamRunResult {
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let mut result = StreamRunResult::default();
    let mut conn: Option<Connection> = None;

    while Instant::now() < end {
        let Some(c) = connected(&mut conn, addr, cfg.request_timeout, true, end, |e| {
            result.record_error(e)
        })
        .await
        else {
            continue;
        };

        let sent = Instant::now();
        let outcome = c.exchange(request, cfg.request_timeout).await;
        let done = Instant::now();
        let resp = match outcome {
            Ok(resp) => resp,
            Err(e) => {
                conn = None;
                result.record_error(e.to_string());
                continue;
            }
        };
        if resp.must_close {
            conn = None;
        }
        let checked = check_stream(&resp, expected).and_then(|events| {
            resp.first_body_at
                .map(|first| (events, first))
                .ok_or_else(|| "empty body".to_string())
        });
        match checked {
            Ok((events, first)) => {
                result.served += 1;
                result.record_events(events);
                if sent >= measure_from && done <= end {
                    result
                        .ttfb_ns
                        .push(first.saturating_duration_since(sent).as_nanos() as u64);
                    result
                        .total_ns
                        .push(done.duration_since(sent).as_nanos() as u64);
                }
            }
            Err(msg) => result.record_error(msg),
        }
    }
    result
}

#[cfg(test)]
mod test {
    use super::*;

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status,
            body_len: body.len(),
            must_close: false,
            body: Some(body.as_bytes().to_vec()),
            first_body_at: Some(Instant::now()),
        }
    }

    fn chunk(content: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}}]})
        )
    }

    #[test]
    fn prompt_and_reply_have_one_chunk_per_word() {
        let p = prompt(60);
        assert_eq!(p.split(' ').count(), 60);
        assert!(p.starts_with("alpha bravo") && p.ends_with(crate::payloads::EMAIL));
        assert_eq!(content_chunks(&expected_reply(&p)), 63);
        let body: Value = serde_json::from_str(&chat_body("m:x", &p)).unwrap();
        assert_eq!(body["stream"], true);
        assert_eq!(body["messages"][0]["content"], p.as_str());
    }

    #[test]
    fn valid_stream_counts_data_events() {
        let body = format!(
            "{}{}{}data: {{\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n",
            chunk(""),
            chunk("Mock "),
            chunk("reply")
        );
        assert_eq!(check_stream(&resp(200, &body), "Mock reply"), Ok(5));
    }

    #[test]
    fn bad_streams_are_errors() {
        let ok = format!("{}data: [DONE]\n\n", chunk("hi"));
        assert!(
            check_stream(&resp(502, &ok), "hi")
                .unwrap_err()
                .starts_with("status 502")
        );
        assert!(
            check_stream(&resp(200, &ok), "ho")
                .unwrap_err()
                .starts_with("content mismatch")
        );
        let cut = chunk("hi");
        assert!(
            check_stream(&resp(200, &cut), "hi")
                .unwrap_err()
                .contains("does not end with data: [DONE]")
        );
        let err = format!("data: {{\"error\":{{\"message\":\"x\"}}}}\n\n{ok}");
        assert!(
            check_stream(&resp(200, &err), "hi")
                .unwrap_err()
                .starts_with("error event")
        );
        let after = format!("{ok}{}", chunk("more"));
        assert!(check_stream(&resp(200, &after), "hi").is_err());
    }
}
