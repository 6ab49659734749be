//! HTTP plumbing shared by the data plane and Sluice's own listeners:
//! bounded request bodies, response writing, SSE framing, request ids.

pub mod app;
pub mod body;
pub mod request_id;
pub mod respond;
pub mod sse;
