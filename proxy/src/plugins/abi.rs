//! Telling an author what a component built against an older
//! `sluice:plugin` must change, instead of a linker error.

use wasmtime::component::Component;

/// The package version this host speaks.
pub const ABI: &str = "sluice:plugin@0.2.0";

/// `Some(advice)` when `component` imports or exports `sluice:plugin`
/// interfaces of another version than [`ABI`].
pub fn explain_old_abi(component: &Component) -> Option<String> {
    let engine = component.engine();
    let ty = component.component_type();
    let names: Vec<String> = ty
        .imports(engine)
        .map(|(n, _)| n.to_owned())
        .chain(ty.exports(engine).map(|(n, _)| n.to_owned()))
        .collect();
    let version = names.iter().find_map(|n| {
        let rest = n.strip_prefix("sluice:plugin/")?;
        let (_, v) = rest.split_once('@')?;
        (!v.starts_with("0.2")).then(|| v.to_owned())
    })?;
    let mut advice = format!(
        "built against sluice:plugin@{version}; this gateway speaks {ABI}. Rebuild it against \
         the wit/ of this release (the Rust SDK, componentize-py and jco all read it)."
    );
    if version.starts_with("0.1") {
        advice.push_str(
            " What changed in 0.2: the router world exports the interface `routing` (its \
             `route` function used to be a world-level export) and `route` takes a `request` \
             resource read through getters (request.model(), request.header(name), \
             request.tool-names(), …) instead of a `request-view` record; a route decision is \
             `route(route-plan)` with a list of candidate targets tried in order, so a single \
             target becomes a one-element list; redactors return \
             `result<redacted-request, rejection>` and may hand `state` from the request to the \
             response or stream redactor, and stream redactors can reject; evaluators get an \
             `exchange` resource (provider, model, usage, cost, the assembled answer text).",
        );
    }
    Some(advice)
}
