//! End-to-end tests: the real `sluice` binary in front of the real mock
//! provider, with real plugin components, driven over HTTP.

mod budgets;
mod errors;
mod evaluation;
mod guests;
mod hardening;
mod harness;
mod hostile;
mod http2;
mod intake;
mod keys;
mod large;
mod observability;
mod pii;
mod redact;
mod reload;
mod routers;
mod routing;
mod sdk;
mod traces;
mod translate;
mod upstream;
