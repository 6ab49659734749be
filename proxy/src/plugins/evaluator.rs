//! Calling evaluator plugins (off the request path).

use std::sync::Arc;

use wasmtime::component::Resource;

use super::PluginError;
use super::bindings::ExchangeHandle;
use super::facts::ExchangeFacts;
use super::limits::metered;
use super::plugin::{Exports, Plugin};

pub use super::bindings::evaluator::exports::sluice::plugin::evaluation::{Signal, Verdict};

impl Plugin {
    /// Score one finished exchange; `Ok(Err(_))` is the evaluator's own
    /// refusal.
    pub async fn evaluate(
        &self,
        facts: &Arc<ExchangeFacts>,
    ) -> Result<Result<Verdict, String>, PluginError> {
        let input = facts.request.body.len() + facts.response_body.len();
        let mut call = self.begin(input).await?;
        let budget = call.budget;
        let w = call.warm();
        let handle = match w.store.data_mut().lend_exchange(facts) {
            Ok(h) => h,
            Err(e) => return call.settle(Err(e)),
        };
        let rep = handle.rep();
        let Exports::Evaluator(evaluator) = &w.exports else {
            unreachable!("only evaluator plugins evaluate")
        };
        let evaluation = evaluator.sluice_plugin_evaluation();
        let r = metered(
            &w.clock,
            &budget,
            evaluation.call_evaluate(&mut w.store, handle),
        )
        .await;
        let _ = w
            .store
            .data_mut()
            .table
            .delete(Resource::<ExchangeHandle>::new_own(rep));
        call.settle(r)
    }
}
