//! What travels: the upstream's fixed answers, the client's request
//! bodies, and the check that an answer is what the client asked for.

use serde_json::Value;

/// The static upstream's answer to `POST /v1/chat/completions`: a small
/// OpenAI completion with a `usage` block, so the gateway prices and
/// records it as it would a real one.
pub const OPENAI_COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark upstream.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":7,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0}}}"#;

/// The static upstream's answer to `POST /v1/messages`: the same reply as
/// an Anthropic message, for the translated scenarios.
pub const ANTHROPIC_MESSAGE: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Hello from the benchmark upstream."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":14,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":7}}"#;

/// Every client request carries one address, so a bound PII redactor has
/// something to pseudonymize (and every other target the same bytes).
pub const EMAIL: &str = "alice.smith@example.com";

/// The client's prompt in the non-streamed scenarios.
pub fn prompt() -> String {
    format!("Please reply to {EMAIL} about the meeting.")
}

/// A non-streamed OpenAI chat completion request for `model`.
pub fn chat_body(model: &str) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt()}],
    })
    .to_string()
}

/// Checks that `body` is an OpenAI chat completion with content and usage
/// (a translated answer must have been translated back), and that no
/// pseudonym of the redactor leaked to the client.
pub fn check_completion(body: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    if v["object"] != "chat.completion" {
        return Err("answer is not an OpenAI chat.completion".into());
    }
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .ok_or("answer has no choices[0].message.content")?;
    if content.is_empty() {
        return Err("answer content is empty".into());
    }
    if content.contains("[EMAIL") {
        return Err(format!(
            "a redactor placeholder reached the client: {content}"
        ));
    }
    if !v["usage"]["total_tokens"].is_u64() {
        return Err("answer has no usage.total_tokens".into());
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn upstream_answers_are_valid_json_with_usage() {
        assert_eq!(check_completion(OPENAI_COMPLETION.as_bytes()), Ok(()));
        let ant: Value = serde_json::from_str(ANTHROPIC_MESSAGE).unwrap();
        assert_eq!(ant["type"], "message");
        assert!(ant["usage"]["output_tokens"].is_u64());
    }

    #[test]
    fn wrong_shapes_and_leaked_placeholders_are_refused() {
        assert!(check_completion(ANTHROPIC_MESSAGE.as_bytes()).is_err());
        assert!(check_completion(b"{\"error\":{}}").is_err());
        assert!(check_completion(b"not json").is_err());
        let leaked = OPENAI_COMPLETION.replace("Hello from", "Write to [EMAIL_1] from");
        assert!(
            check_completion(leaked.as_bytes())
                .unwrap_err()
                .contains("placeholder")
        );
    }

    #[test]
    fn requests_carry_the_email() {
        let v: Value = serde_json::from_str(&chat_body("oai:gpt-4o-mini")).unwrap();
        assert_eq!(v["model"], "oai:gpt-4o-mini");
        assert!(
            v["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains(EMAIL)
        );
    }
}
