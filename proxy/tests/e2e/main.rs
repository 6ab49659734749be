//! End-to-end tests: the real `sluice` binary in front of the real mock
//! provider, with real plugin components, driven over HTTP.

mod harness;
mod hostile;
mod reload;
