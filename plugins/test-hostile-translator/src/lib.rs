//! Test-only translator whose memory use explodes on large inputs (64 KiB
//! or more) and on any input containing `ALLOC_FOREVER`; everything else
//! gets a minimal, valid translation. The host must answer the first 413
//! without holding it against the plugin, and count the second.

use sluice_plugin_sdk::translator::*;

struct Hostile;

impl Guest for Hostile {
    fn describe() -> PluginInfo {
        let mut info = plugin_info(
            "hostile-translator",
            "0.1.0",
            "Runs out of memory on large or marked inputs",
        );
        info.capabilities = vec!["openai->anthropic".into(), "anthropic->openai".into()];
        info
    }
}

fn hoard(body: &str) {
    if body.len() >= 64 << 10 || body.contains("ALLOC_FOREVER") {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

impl Translation for Hostile {
    type StreamTranslator = Stream;

    fn translate_request(ctx: TranslateContext, body: String) -> Result<String, TranslateError> {
        hoard(&body);
        let out = match ctx.provider {
            ApiShape::Anthropic => {
                serde_json::json!({"model": ctx.provider_model, "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}]})
            }
            ApiShape::Openai => serde_json::json!({"model": ctx.provider_model,
                "messages": [{"role": "user", "content": "hi"}]}),
        };
        Ok(out.to_string())
    }

    fn translate_response(ctx: TranslateContext, body: String) -> Result<String, TranslateError> {
        hoard(&body);
        let out = match ctx.client {
            ApiShape::Openai => serde_json::json!({"id": "x", "object": "chat.completion",
                "created": 0, "model": ctx.client_model, "choices": [{"index": 0,
                "message": {"role": "assistant", "content": "translated"},
                "finish_reason": "stop"}]}),
            ApiShape::Anthropic => serde_json::json!({"id": "x", "type": "message",
                "role": "assistant", "model": ctx.client_model,
                "content": [{"type": "text", "text": "translated"}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}}),
        };
        Ok(out.to_string())
    }
}

/// Streams are not this plugin's point: every event is dropped.
struct Stream;

impl GuestStreamTranslator for Stream {
    fn new(_ctx: TranslateContext) -> Self {
        Stream
    }

    fn push(&self, _event: SseEvent) -> Result<Vec<SseEvent>, TranslateError> {
        Ok(Vec::new())
    }

    fn finish(&self) -> Vec<SseEvent> {
        Vec::new()
    }
}

export_translator!(Hostile);
