//! The WIT `evaluator` world: adapts its types to [`crate::score`].

use crate::score::{self, Shape};
use sluice_plugin_sdk::evaluator::*;

struct Heuristic;

impl Guest for Heuristic {
    fn describe() -> PluginInfo {
        plugin_info(
            "heuristic-judge",
            env!("CARGO_PKG_VERSION"),
            "Score answers by emptiness, refusal, truncation and errors",
        )
    }
}

impl Evaluation for Heuristic {
    fn evaluate(exchange: Exchange) -> Result<Verdict, String> {
        let shape = match exchange.inbound_shape() {
            ApiShape::Openai => Shape::OpenAi,
            ApiShape::Anthropic => Shape::Anthropic,
        };
        let outcome = if exchange.streamed() && exchange.status() < 400 {
            score::score_answer(&score::Answer {
                text: exchange.answer_text(),
                truncated: false,
            })
        } else {
            score::evaluate(shape, exchange.status(), &exchange.response_body())?
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
