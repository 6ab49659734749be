//! The WIT `evaluator` world: adapts its types to [`crate::score`].

use crate::score::{self, Shape};
use sluice_plugin_sdk::evaluator::*;

struct Heuristic;

impl Guest for Heuristic {
    fn describe() -> PluginInfo {
        plugin_info(
            "heuristic-judge",
            env!("CARGO_PKG_VERSION"),
            "Score answers by emptiness, refusal, truncation, tool-call and JSON validity, and errors",
        )
    }
}

impl Evaluation for Heuristic {
    fn evaluate(exchange: Exchange) -> Result<Verdict, String> {
        let shape = match exchange.inbound_shape() {
            ApiShape::Openai => Shape::OpenAi,
            ApiShape::Anthropic => Shape::Anthropic,
        };
        let status = exchange.status();
        // An error is scored without copying any body into the guest.
        let outcome = if status >= 400 {
            score::error_outcome()
        } else {
            let streamed = exchange.streamed();
            score::evaluate_exchange(&score::Exchange {
                shape,
                status,
                streamed,
                request_body: &exchange.request_body(),
                response_body: &exchange.response_body(),
                answer_text: &if streamed {
                    exchange.answer_text()
                } else {
                    String::new()
                },
            })?
        };
        Ok(Verdict {
            score: outcome.score,
            confidence: score::CONFIDENCE,
            rubric_id: score::RUBRIC_ID.into(),
            rubric_version: score::RUBRIC_VERSION,
            signals: outcome
                .signals
                .into_iter()
                .map(|(name, value)| Signal {
                    name: name.into(),
                    value,
                })
                .collect(),
        })
    }
}

export_evaluator!(Heuristic);
