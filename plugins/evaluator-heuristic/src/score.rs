//! The heuristic rubric, on plain strings and `serde_json::Value`.

use serde_json::Value;

pub const RUBRIC_ID: &str = "heuristic";
pub const RUBRIC_VERSION: u32 = 1;
/// Heuristics are cheap and rough: never fully sure.
pub const CONFIDENCE: f64 = 0.6;

const EMPTY_FACTOR: f64 = 0.4;
const REFUSAL_FACTOR: f64 = 0.5;
const TRUNCATED_FACTOR: f64 = 0.8;

/// Openings that make a sentence a refusal, lower case; `'` also matches
/// the typographic `’`.
const REFUSALS: &[&str] = &[
    "i can't",
    "i cannot",
    "i'm unable",
    "i am unable",
    "i won't",
];

/// The wire shape of the response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    OpenAi,
    Anthropic,
}

/// A score in [0, 1] and the signals behind it, in a fixed order: `error`,
/// `empty`, `refusal`, `truncated` (1.0 when it fired, else 0.0) and
/// `length_chars` (characters in the answer).
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub score: f64,
    pub signals: Vec<(&'static str, f64)>,
}

impl Outcome {
    pub fn signal(&self, name: &str) -> Option<f64> {
        self.signals.iter().find(|(n, _)| *n == name).map(|s| s.1)
    }
}

/// The assistant's answer and whether the provider cut it short.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub text: String,
    pub truncated: bool,
}

/// Score one exchange. A status of 400 or more scores 0 without reading the
/// body (it is an error envelope, not an answer); otherwise a body that is
/// not a response of `shape` is an error.
pub fn evaluate(shape: Shape, status: u16, body: &str) -> Result<Outcome, String> {
    if status >= 400 {
        return Ok(Outcome {
            score: 0.0,
            signals: vec![
                ("error", 1.0),
                ("empty", 0.0),
                ("refusal", 0.0),
                ("truncated", 0.0),
                ("length_chars", 0.0),
            ],
        });
    }
    Ok(score_answer(&extract(shape, body)?))
}

/// Score an answer already extracted (a streamed answer's assembled text).
pub fn score_answer(answer: &Answer) -> Outcome {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let empty = answer.text.trim().is_empty();
    let refusal = !empty && is_refusal(&answer.text);
    let mut score = 1.0;
    if empty {
        score *= EMPTY_FACTOR;
    }
    if refusal {
        score *= REFUSAL_FACTOR;
    }
    if answer.truncated {
        score *= TRUNCATED_FACTOR;
    }
    Outcome {
        score: f64::clamp(score, 0.0, 1.0),
        signals: vec![
            ("error", 0.0),
            ("empty", flag(empty)),
            ("refusal", flag(refusal)),
            ("truncated", flag(answer.truncated)),
            ("length_chars", answer.text.chars().count() as f64),
        ],
    }
}

/// The answer in a response body of `shape`.
pub fn extract(shape: Shape, body: &str) -> Result<Answer, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("response body is not JSON: {e}"))?;
    match shape {
        Shape::OpenAi => {
            let choices = v["choices"]
                .as_array()
                .ok_or("response body is not an OpenAI chat.completion: no `choices`")?;
            let Some(choice) = choices.first() else {
                return Ok(Answer {
                    text: String::new(),
                    truncated: false,
                });
            };
            // `content` is a string, null (tool calls only) or, from some
            // providers, a list of text parts.
            let content = &choice["message"]["content"];
            let text = match content {
                Value::String(s) => s.clone(),
                Value::Array(parts) => join_text(parts),
                _ => String::new(),
            };
            Ok(Answer {
                text,
                truncated: choice["finish_reason"] == "length",
            })
        }
        Shape::Anthropic => {
            let blocks = v["content"]
                .as_array()
                .ok_or("response body is not an Anthropic message: no `content`")?;
            Ok(Answer {
                text: join_text(blocks),
                truncated: v["stop_reason"] == "max_tokens",
            })
        }
    }
}

/// The `text` of every block that has one, joined.
fn join_text(blocks: &[Value]) -> String {
    blocks.iter().filter_map(|b| b["text"].as_str()).collect()
}

/// Whether the answer, or one of its sentences, opens with a refusal phrase.
/// A sentence opens at the start of the text, after `.`, `!` or `?`
/// followed by white space, and after a line break; leading white space and
/// Markdown/quote marks (`*`, `_`, `>`, `"`, `“`) are skipped.
pub fn is_refusal(text: &str) -> bool {
    let norm: String = text
        .chars()
        .map(|c| match c {
            '\u{2019}' => '\'',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let mut at_start = true;
    let mut after_stop = false;
    for (i, c) in norm.char_indices() {
        if at_start {
            if c.is_whitespace() || matches!(c, '*' | '_' | '>' | '"' | '“') {
                continue;
            }
            at_start = false;
            if opens_with_refusal(&norm[i..]) {
                return true;
            }
        }
        if c == '\n' || (after_stop && c.is_whitespace()) {
            at_start = true;
        }
        after_stop = matches!(c, '.' | '!' | '?');
    }
    false
}

fn opens_with_refusal(s: &str) -> bool {
    REFUSALS.iter().any(|p| {
        s.starts_with(p)
            && !s[p.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn openai(content: Value, finish: &str) -> String {
        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                "finish_reason": finish}]})
        .to_string()
    }

    fn anthropic(texts: &[&str], stop: &str) -> String {
        let content: Vec<Value> = texts
            .iter()
            .map(|t| json!({"type": "text", "text": t}))
            .collect();
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": content, "stop_reason": stop})
        .to_string()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_plain_answer_scores_one() {
        let o = evaluate(Shape::OpenAi, 200, &openai(json!("Paris."), "stop")).unwrap();
        assert_eq!(o.score, 1.0);
        assert_eq!(
            o.signals,
            vec![
                ("error", 0.0),
                ("empty", 0.0),
                ("refusal", 0.0),
                ("truncated", 0.0),
                ("length_chars", 6.0),
            ]
        );
    }

    #[test]
    fn empty_answers_are_penalised() {
        for body in [
            openai(json!(""), "stop"),
            openai(json!("  \n "), "stop"),
            openai(Value::Null, "tool_calls"),
            json!({"choices": []}).to_string(),
            anthropic(&[], "end_turn"),
        ] {
            let shape = if body.contains("\"type\"") {
                Shape::Anthropic
            } else {
                Shape::OpenAi
            };
            let o = evaluate(shape, 200, &body).unwrap();
            assert!(close(o.score, 0.4), "{body}: {o:?}");
            assert_eq!(o.signal("empty"), Some(1.0));
            assert_eq!(o.signal("refusal"), Some(0.0));
        }
    }

    #[test]
    fn refusals_at_the_start_of_the_answer_or_a_sentence() {
        for text in [
            "I can't help with that.",
            "i CANNOT do this",
            "Sure thing. I'm unable to browse, though.",
            "Let me think!  I am unable to answer",
            "First line\nI won't do that",
            "**I can’t** share that.",
        ] {
            assert!(is_refusal(text), "{text}");
        }
        let o = evaluate(
            Shape::OpenAi,
            200,
            &openai(json!("I cannot do that."), "stop"),
        )
        .unwrap();
        assert!(close(o.score, 0.5));
        assert_eq!(o.signal("refusal"), Some(1.0));
    }

    #[test]
    fn refusal_phrases_mid_sentence_do_not_count() {
        for text in [
            "You said I can't win, but you can.",
            "If I cannot find it, I will ask.",
            "Mr. Smith says that I won't go",
            "I cannotate is not a word",
            "The value is 3.I can't",
            "I canned the soup.",
        ] {
            assert!(!is_refusal(text), "{text}");
        }
    }

    #[test]
    fn truncation_by_shape() {
        let o = evaluate(Shape::OpenAi, 200, &openai(json!("Once upon"), "length")).unwrap();
        assert!(close(o.score, 0.8));
        assert_eq!(o.signal("truncated"), Some(1.0));
        let o = evaluate(
            Shape::Anthropic,
            200,
            &anthropic(&["Once ", "upon"], "max_tokens"),
        )
        .unwrap();
        assert!(close(o.score, 0.8));
        assert_eq!(o.signal("length_chars"), Some(9.0));
        // A refusal cut short compounds.
        let o = evaluate(
            Shape::Anthropic,
            200,
            &anthropic(&["I won't"], "max_tokens"),
        )
        .unwrap();
        assert!(close(o.score, 0.4));
        // "max_tokens" means nothing in an OpenAI body.
        let o = evaluate(Shape::OpenAi, 200, &openai(json!("x"), "max_tokens")).unwrap();
        assert_eq!(o.score, 1.0);
    }

    #[test]
    fn anthropic_text_blocks_are_joined_and_others_skipped() {
        let body = json!({"type": "message", "content": [
            {"type": "text", "text": "Grüße, "},
            {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            {"type": "text", "text": "日本"}], "stop_reason": "end_turn"})
        .to_string();
        let a = extract(Shape::Anthropic, &body).unwrap();
        assert_eq!(a.text, "Grüße, 日本");
        let o = evaluate(Shape::Anthropic, 200, &body).unwrap();
        assert_eq!(o.signal("length_chars"), Some(9.0), "characters, not bytes");
    }

    #[test]
    fn error_status_scores_zero_whatever_the_body() {
        for status in [400, 429, 503] {
            let o = evaluate(Shape::OpenAi, status, "<html>bad gateway</html>").unwrap();
            assert_eq!(o.score, 0.0);
            assert_eq!(o.signal("error"), Some(1.0));
        }
        let o = evaluate(Shape::OpenAi, 399, &openai(json!("ok"), "stop")).unwrap();
        assert_eq!(o.signal("error"), Some(0.0));
    }

    #[test]
    fn unparseable_or_wrong_shape_bodies_are_errors() {
        assert!(evaluate(Shape::OpenAi, 200, "not json").is_err());
        assert!(evaluate(Shape::OpenAi, 200, "").is_err());
        let e = evaluate(Shape::OpenAi, 200, &anthropic(&["hi"], "end_turn")).unwrap_err();
        assert!(e.contains("choices"), "{e}");
        let e = evaluate(Shape::Anthropic, 200, &openai(json!("hi"), "stop")).unwrap_err();
        assert!(e.contains("content"), "{e}");
    }
}
