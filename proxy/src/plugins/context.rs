//! The host side of the `context` interface: each call gets an owned handle
//! to the request's (or exchange's) facts; a getter copies only what the
//! guest asks for.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::Resource;

use super::bindings::context::{Host, HostExchange, HostRequest};
use super::bindings::{ApiShape, CustomerTier, ExchangeHandle, RequestHandle, Target, Usage};
use super::facts::{ExchangeFacts, RequestFacts, Tier};
use super::state::HostState;

impl HostState {
    /// A handle to `facts` for one call; the caller removes it afterwards.
    pub fn lend_request(
        &mut self,
        facts: &Arc<RequestFacts>,
    ) -> wasmtime::Result<Resource<RequestHandle>> {
        Ok(self.table.push(RequestHandle(facts.clone()))?)
    }

    pub fn lend_exchange(
        &mut self,
        facts: &Arc<ExchangeFacts>,
    ) -> wasmtime::Result<Resource<ExchangeHandle>> {
        Ok(self.table.push(ExchangeHandle(facts.clone()))?)
    }

    fn request(&self, r: &Resource<RequestHandle>) -> &RequestFacts {
        // A handle the guest kept past its call, or forged, reads as empty
        // facts rather than trapping the host.
        match self.table.get(r) {
            Ok(h) => &h.0,
            Err(_) => empty_request(),
        }
    }

    fn exchange(&self, r: &Resource<ExchangeHandle>) -> Option<&ExchangeFacts> {
        self.table.get(r).ok().map(|h| &*h.0)
    }
}

fn empty_request() -> &'static RequestFacts {
    static EMPTY: std::sync::OnceLock<RequestFacts> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| RequestFacts {
        request_id: String::new(),
        inbound_shape: crate::api::Shape::OpenAi,
        model: String::new(),
        canonical_model: String::new(),
        stream: false,
        headers: Vec::new(),
        message_count: 0,
        body: Bytes::new(),
        estimated_input_tokens: 0,
        max_output_tokens: None,
        tool_names: Vec::new(),
        caller: None,
        candidates: Vec::new(),
    })
}

impl Host for HostState {}

impl HostRequest for HostState {
    fn request_id(&mut self, r: Resource<RequestHandle>) -> String {
        self.request(&r).request_id.clone()
    }

    fn inbound_shape(&mut self, r: Resource<RequestHandle>) -> ApiShape {
        self.request(&r).inbound_shape.into()
    }

    fn model(&mut self, r: Resource<RequestHandle>) -> String {
        self.request(&r).model.clone()
    }

    fn canonical_model(&mut self, r: Resource<RequestHandle>) -> String {
        self.request(&r).canonical_model.clone()
    }

    fn stream(&mut self, r: Resource<RequestHandle>) -> bool {
        self.request(&r).stream
    }

    fn header(&mut self, r: Resource<RequestHandle>, name: String) -> Option<String> {
        self.request(&r)
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.clone())
    }

    fn header_names(&mut self, r: Resource<RequestHandle>) -> Vec<String> {
        self.request(&r)
            .headers
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn message_count(&mut self, r: Resource<RequestHandle>) -> u32 {
        self.request(&r).message_count
    }

    fn body_bytes(&mut self, r: Resource<RequestHandle>) -> u64 {
        self.request(&r).body.len() as u64
    }

    fn estimated_input_tokens(&mut self, r: Resource<RequestHandle>) -> u64 {
        self.request(&r).estimated_input_tokens
    }

    fn max_output_tokens(&mut self, r: Resource<RequestHandle>) -> Option<u64> {
        self.request(&r).max_output_tokens
    }

    fn tool_names(&mut self, r: Resource<RequestHandle>) -> Vec<String> {
        self.request(&r).tool_names.clone()
    }

    fn key_id(&mut self, r: Resource<RequestHandle>) -> Option<String> {
        self.request(&r).caller.as_ref().map(|c| c.key_id.clone())
    }

    fn user_id(&mut self, r: Resource<RequestHandle>) -> Option<String> {
        self.request(&r).caller.as_ref()?.user_id.clone()
    }

    fn team_id(&mut self, r: Resource<RequestHandle>) -> Option<String> {
        self.request(&r).caller.as_ref()?.team_id.clone()
    }

    fn workspace(&mut self, r: Resource<RequestHandle>) -> Option<String> {
        self.request(&r).caller.as_ref()?.workspace.clone()
    }

    fn tier(&mut self, r: Resource<RequestHandle>) -> Option<CustomerTier> {
        Some(match self.request(&r).caller.as_ref()?.tier? {
            Tier::Trial => CustomerTier::Trial,
            Tier::Paid => CustomerTier::Paid,
            Tier::Internal => CustomerTier::Internal,
        })
    }

    fn candidates(&mut self, r: Resource<RequestHandle>) -> Vec<Target> {
        self.request(&r)
            .candidates
            .iter()
            .map(|(provider, model)| Target {
                provider: provider.clone(),
                model: model.clone(),
            })
            .collect()
    }

    fn body(&mut self, r: Resource<RequestHandle>) -> String {
        String::from_utf8_lossy(&self.request(&r).body).into_owned()
    }

    fn drop(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<()> {
        let _ = self.table.delete(r);
        Ok(())
    }
}

impl HostExchange for HostState {
    fn request_id(&mut self, r: Resource<ExchangeHandle>) -> String {
        self.exchange(&r)
            .map(|e| e.request.request_id.clone())
            .unwrap_or_default()
    }

    fn inbound_shape(&mut self, r: Resource<ExchangeHandle>) -> ApiShape {
        self.exchange(&r)
            .map_or(ApiShape::Openai, |e| e.request.inbound_shape.into())
    }

    fn provider(&mut self, r: Resource<ExchangeHandle>) -> String {
        self.exchange(&r)
            .map(|e| e.provider.clone())
            .unwrap_or_default()
    }

    fn model(&mut self, r: Resource<ExchangeHandle>) -> String {
        self.exchange(&r)
            .map(|e| e.model.clone())
            .unwrap_or_default()
    }

    fn client_model(&mut self, r: Resource<ExchangeHandle>) -> String {
        self.exchange(&r)
            .map(|e| e.request.model.clone())
            .unwrap_or_default()
    }

    fn status(&mut self, r: Resource<ExchangeHandle>) -> u16 {
        self.exchange(&r).map_or(0, |e| e.status)
    }

    fn latency_ms(&mut self, r: Resource<ExchangeHandle>) -> u64 {
        self.exchange(&r).map_or(0, |e| e.latency_ms)
    }

    fn streamed(&mut self, r: Resource<ExchangeHandle>) -> bool {
        self.exchange(&r).is_some_and(|e| e.request.stream)
    }

    fn request_body(&mut self, r: Resource<ExchangeHandle>) -> String {
        self.exchange(&r)
            .map(|e| String::from_utf8_lossy(&e.request.body).into_owned())
            .unwrap_or_default()
    }

    fn response_body(&mut self, r: Resource<ExchangeHandle>) -> String {
        self.exchange(&r)
            .map(|e| String::from_utf8_lossy(&e.response_body).into_owned())
            .unwrap_or_default()
    }

    fn answer_text(&mut self, r: Resource<ExchangeHandle>) -> String {
        self.exchange(&r)
            .map(|e| e.answer_text.clone())
            .unwrap_or_default()
    }

    fn usage(&mut self, r: Resource<ExchangeHandle>) -> Option<Usage> {
        let t = self.exchange(&r)?.usage?;
        Some(Usage {
            input_tokens: t.input,
            output_tokens: t.output,
            cached_input_tokens: t.cached_input,
        })
    }

    fn cost_usd(&mut self, r: Resource<ExchangeHandle>) -> Option<String> {
        self.exchange(&r)?.cost_usd.clone()
    }

    fn key_id(&mut self, r: Resource<ExchangeHandle>) -> Option<String> {
        Some(self.exchange(&r)?.request.caller.as_ref()?.key_id.clone())
    }

    fn user_id(&mut self, r: Resource<ExchangeHandle>) -> Option<String> {
        self.exchange(&r)?.request.caller.as_ref()?.user_id.clone()
    }

    fn team_id(&mut self, r: Resource<ExchangeHandle>) -> Option<String> {
        self.exchange(&r)?.request.caller.as_ref()?.team_id.clone()
    }

    fn drop(&mut self, r: Resource<ExchangeHandle>) -> wasmtime::Result<()> {
        let _ = self.table.delete(r);
        Ok(())
    }
}
