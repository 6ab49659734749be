//! The answer's text, from what the client received: a whole body, or
//! the SSE events of a stream (deltas joined in order).

use serde_json::Value;

use crate::api::Shape;

pub fn answer_text(shape: Shape, streamed: bool, body: &[u8]) -> String {
    if streamed {
        return stream_text(shape, body);
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    match shape {
        Shape::OpenAi => v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        Shape::Anthropic => v["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect(),
    }
}

fn stream_text(shape: Shape, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data.trim_start()) else {
            continue;
        };
        let piece = match shape {
            Shape::OpenAi => v["choices"][0]["delta"]["content"].as_str(),
            Shape::Anthropic => v["delta"]["text"].as_str(),
        };
        out.push_str(piece.unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn text_of_whole_and_streamed_answers() {
        let oai = br#"{"choices":[{"message":{"content":"hi there"}}]}"#;
        assert_eq!(answer_text(Shape::OpenAi, false, oai), "hi there");
        let ant = br#"{"content":[{"type":"text","text":"a"},{"type":"tool_use"},{"type":"text","text":"b"}]}"#;
        assert_eq!(answer_text(Shape::Anthropic, false, ant), "ab");
        let sse = b"data: {\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"llo\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(answer_text(Shape::OpenAi, true, sse), "hello");
        let sse = b"event: content_block_delta\ndata: {\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n";
        assert_eq!(answer_text(Shape::Anthropic, true, sse), "x");
        assert_eq!(answer_text(Shape::OpenAi, false, b"not json"), "");
    }
}
