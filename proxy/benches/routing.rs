//! Latency of one routing decision (`routing::decide`), in process:
//! - the native chain's worst path: `"model": "auto"` walks every slot
//!   (a pin that does not match, three rules, one of which reads the
//!   ledger, a pattern lookup over ~1000 outcomes, delegation) and lands
//!   on global_default, expanded through the registry;
//! - the common path: the client names a configured provider (slot 1);
//! - one WASM router in the custom slot (Rust, Python, JS), on a request
//!   shaped so that it decides.
//!
//! Targets: the whole chain within its 5 ms budget, and a router call
//! costing ≤ 5 µs over the native path. Run with `make bench` (after
//! `make plugins`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use sluice::api::Shape;
use sluice::budget::{Ask, BudgetPolicy, Budgets, Ledger, ScopeKind, Scoped};
use sluice::config::{ProviderConfig, ProviderKind, TimeoutConfig};
use sluice::keys::{Caps, CustomerTier, GatewayKey, KeyStatus};
use sluice::money::Usd;
use sluice::plugins::{
    Binding, Caller, Plugin, PluginEngine, Policies, RequestFacts, Tier, load_plugins,
};
use sluice::pricing::Pricing;
use sluice::providers::Providers;
use sluice::routing::breaker::Outcome as CallOutcome;
use sluice::routing::patterns::{Features, Fingerprint, Outcome};
use sluice::routing::{
    self, Canonical, Env, Health, PatternStore, Route, RoutingPolicy, Slot, normalize,
};

const N: usize = 20_000;
const WARM_UP: usize = 1_000;
/// The chain's budget (`routing.toml` `budget_ms`).
const CHAIN_BUDGET: Duration = Duration::from_millis(5);
/// What one router call may add to a decision.
const PLUGIN_TARGET_NS: f64 = 5_000.0;

/// Every native slot has something to do, none of it matches `auto`.
const POLICY: &str = r#"
budget_ms = 5
transparent = true
managed_aliases = ["auto"]
default_model = "mock:gpt-4o-mini"

[[pin]]
team = "interns"
model = "mock:gpt-4o-mini"

[[rule]]
name = "long-prompts"
when = { min_estimated_tokens = 50000 }
route = ["mock:claude-sonnet-4-6"]

[[rule]]
name = "priority"
when = { header = { "x-sluice-priority" = "high" } }
route = ["mock-openai:gpt-4o"]

# Last, so the two before are tried first; the caller is on this team, so
# the ledger is read and the predicate evaluated (and false: $100 left).
[[rule]]
name = "research-saves"
when = { team = "research", team_budget_remaining_lt = "1.00" }
route = ["mock:gpt-4o-mini"]

[models."mock:gpt-4o-mini"]
equivalents = ["mock-openai:gpt-4o-mini"]
fallbacks = ["mock-anthropic:claude-sonnet-4-6"]

[delegation]
small = "mock:gpt-4o-mini"
large = "mock:claude-sonnet-4-6"

[pattern]
enabled = true
cost_weight = 0.05
min_confidence = 0.05
min_sample_size = 5
"#;

const BUDGETS: &str = "[teams.research]\ndaily_usd = \"100\"\nmonthly_usd = \"2000\"\n";

/// A router under test, and how to shape the request so it decides.
struct RouterCase {
    label: &'static str,
    file: &'static str,
    /// The name the component describes itself by, for its binding.
    name: &'static str,
    config: &'static str,
    /// A header the router keys on, if it does not decide by tier.
    header: Option<(&'static str, &'static str)>,
}

/// The tier routers (a trial caller is routed to `small`), each with the
/// older router of its language to use while the tier one is not built.
fn router_cases(dir: &Path) -> Vec<(RouterCase, Option<&'static str>)> {
    let tier = |label, file, name| RouterCase {
        label,
        file,
        name,
        config: "{}",
        header: None,
    };
    let pairs = [
        (
            tier("rust", "router_tier.wasm", "tier-router-rust"),
            RouterCase {
                label: "rust",
                file: "router_model_prefix.wasm",
                name: "model-prefix",
                config: r#"{"rules":[{"prefix":"auto","provider":"mock","model":"gpt-4o-mini"}]}"#,
                header: None,
            },
        ),
        (
            tier("python", "router_tier_python.wasm", "tier-router-python"),
            RouterCase {
                label: "python",
                file: "router_python.wasm",
                name: "python-router",
                config: "{}",
                header: Some(("x-route-lang", "python")),
            },
        ),
        (
            tier("js", "router_tier_js.wasm", "tier-router-js"),
            RouterCase {
                label: "js",
                file: "router_js.wasm",
                name: "js-router",
                config: "{}",
                header: Some(("x-route-lang", "js")),
            },
        ),
    ];
    pairs
        .into_iter()
        .map(|(want, fallback)| {
            if dir.join(want.file).is_file() {
                (want, None)
            } else {
                let missing = want.file;
                (fallback, Some(missing))
            }
        })
        .collect()
}

fn plugins_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    assert!(dir.is_dir(), "run `make plugins` first");
    dir
}

/// Load one router alone, bound to the custom slot (the default).
fn load_router(engine: &PluginEngine, case: &RouterCase) -> Arc<Plugin> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(plugins_dir().join(case.file), tmp.path().join(case.file)).unwrap();
    let mut policies = Policies::default();
    policies.bindings.insert(
        case.name.to_owned(),
        Binding {
            config: Arc::from(case.config),
            ..Binding::default()
        },
    );
    let set = load_plugins(engine, tmp.path(), &policies, None);
    assert!(set.errors().next().is_none(), "{:?}", set.files);
    assert_eq!(set.routers.len(), 1, "{} is not a router", case.file);
    set.routers[0].clone()
}

fn provider(name: &str, kind: ProviderKind) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind,
        // Never dialled: routing only asks whether a provider exists.
        base_url: Some("http://127.0.0.1:9/v1".into()),
        api_key_env: None,
        api_key_file: None,
        ca_file: None,
        models: Vec::new(),
        timeouts: TimeoutConfig::default(),
    }
}

/// A paid-looking key of the research team, but on the trial tier, so the
/// tier routers have something to decide on and no pin applies.
fn key() -> GatewayKey {
    GatewayKey {
        id: "key_0123456789abcdef".into(),
        hash: [0; 32],
        user_id: Some("alice".into()),
        team_id: Some("research".into()),
        workspace: None,
        customer_tier: Some(CustomerTier::Trial),
        status: KeyStatus::Active,
        created_ms: 0,
        expires_ms: None,
        revoked_ms: None,
        revoked_reason: None,
        grace_period_until_ms: None,
        rotated_from: None,
        rotated_to: None,
        budget_id: "key_0123456789abcdef".into(),
        caps: Caps::default(),
        allowed_models: Vec::new(),
    }
}

/// The ledger with some spend on the team, so the budget predicate reads a
/// live scope rather than an empty default.
fn ledger(policy: &BudgetPolicy) -> Ledger {
    let now = sluice::clock::now_ms();
    let ledger = Ledger::restore(&HashMap::new(), &[], now);
    let pricing = Pricing::parse(
        "version='b'\n[models.\"mock:gpt-4o-mini\"]\ninput_per_mtok=\"0.15\"\noutput_per_mtok=\"0.60\"\n",
    )
    .unwrap();
    let scopes = [Scoped {
        kind: ScopeKind::Team,
        identity: "research".into(),
        caps: policy.teams["research"].clone(),
    }];
    let ask = Ask {
        call_id: "c",
        scopes: &scopes,
        input_tokens: 250,
        price: pricing.price("mock:gpt-4o-mini"),
        max_output: 4096,
        choices: 1,
    };
    let held = ledger.reserve(&ask, now).unwrap();
    ledger.settle(&held, Usd::parse_positive("0.25").unwrap(), 300, now);
    ledger
}

fn features<'a>(k: &'a GatewayKey, tokens: u64, messages: u32) -> Features<'a> {
    Features {
        shape: Shape::OpenAi.as_str(),
        stream: false,
        tools: &[],
        estimated_input_tokens: tokens,
        messages,
        tier: k.customer_tier.map(|t| t.as_str()),
        team: k.team_id.as_deref(),
        task: None,
    }
}

/// ~1000 outcomes over 100 fingerprints near the benchmarked request. Two
/// models with identical records tie, so the slot does the whole scan and
/// scoring and only then declines (`low_confidence`): its most expensive
/// way of not deciding.
fn patterns(policy: &RoutingPolicy, k: &GatewayKey) -> PatternStore {
    let store = PatternStore::new(policy.pattern.clone());
    let now = sluice::clock::now_ms();
    for i in 0..100u64 {
        let fp = Fingerprint::of(&features(k, 16 << (i % 10), 1 << (i / 10)));
        for model in ["mock:gpt-4o", "mock:gpt-4o-mini"] {
            for _ in 0..5 {
                store.record(Outcome {
                    fingerprint: fp,
                    model: model.into(),
                    success: 1.0,
                    eval_confidence: None,
                    cost_nanousd: 25_000,
                    ts_ms: now,
                });
            }
        }
    }
    store.flush();
    assert_eq!(store.stats().rows, 200);
    store
}

/// A request as the pipeline would hand it to routing.
struct Shaped {
    model: &'static str,
    canonical: Canonical,
    headers: HeaderMap,
    fingerprint: Fingerprint,
    facts: RequestFacts,
}

fn shaped(
    model: &'static str,
    extra: Option<(&str, &str)>,
    k: &GatewayKey,
    providers: &Providers,
) -> Shaped {
    let canonical = normalize(model, Shape::OpenAi, &HashMap::new(), |p| {
        providers.get(p).is_some()
    });
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("user-agent", HeaderValue::from_static("OpenAI/Python 1.0"));
    headers.insert("authorization", HeaderValue::from_static("Bearer sk-bench"));
    if let Some((name, value)) = extra {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let facts = RequestFacts {
        request_id: "req_0123456789abcdef".into(),
        inbound_shape: Shape::OpenAi,
        model: model.into(),
        canonical_model: canonical.id(),
        stream: false,
        headers: RequestFacts::visible_headers(&headers),
        message_count: 3,
        body: bytes::Bytes::from_static(br#"{"model":"auto","messages":[]}"#),
        estimated_input_tokens: 250,
        max_output_tokens: None,
        tool_names: Vec::new(),
        caller: Some(Caller {
            key_id: k.id.clone(),
            user_id: k.user_id.clone(),
            team_id: k.team_id.clone(),
            workspace: None,
            tier: Some(Tier::Trial),
        }),
        candidates: vec![(canonical.provider.clone(), canonical.model.clone())],
    };
    Shaped {
        model,
        fingerprint: Fingerprint::of(&features(k, 250, 3)),
        canonical,
        headers,
        facts,
    }
}

struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
}

/// Time `N` decisions after `WARM_UP`, all inside one `block_on`, as on a
/// pingora worker already in async context (so no per-call runtime entry
/// is counted). The first decision is checked, so a mis-shaped request
/// cannot be measured taking the wrong path.
fn measure(
    rt: &tokio::runtime::Runtime,
    env: &Env<'_>,
    s: &Shaped,
    key: &GatewayKey,
    check: impl Fn(&Route),
) -> Stats {
    let req = routing::Request {
        canonical: &s.canonical,
        client_model: s.model,
        key: Some(key),
        headers: &s.headers,
        estimated_input_tokens: s.facts.estimated_input_tokens,
        has_tools: false,
        stream: false,
        fingerprint: s.fingerprint,
    };
    let mut ns: Vec<u64> = rt.block_on(async {
        // The pipeline builds the plugins' facts lazily, once per request;
        // so does this, and it is part of what a plugin decision costs.
        let facts = || Arc::new(s.facts.clone());
        for _ in 0..WARM_UP {
            routing::decide(env, &req, facts).await.unwrap();
        }
        check(&routing::decide(env, &req, facts).await.unwrap());
        let mut ns = Vec::with_capacity(N);
        for _ in 0..N {
            let t = Instant::now();
            let route = routing::decide(env, &req, facts).await;
            ns.push(t.elapsed().as_nanos() as u64);
            std::hint::black_box(route.unwrap());
        }
        ns
    });
    ns.sort_unstable();
    Stats {
        p50: ns[N / 2] as f64,
        p99: ns[N * 99 / 100] as f64,
        mean: ns.iter().sum::<u64>() as f64 / N as f64,
    }
}

fn us(ns: f64) -> String {
    format!("{:.1} µs", ns / 1_000.0)
}

fn line(label: &str, s: &Stats) {
    println!(
        "routing  {label:<40}  p50 {:>9}  p99 {:>9}  mean {:>9}",
        us(s.p50),
        us(s.p99),
        us(s.mean)
    );
}

fn expect(slot: Slot, plugin: Option<&'static str>) -> impl Fn(&Route) {
    move |r: &Route| {
        assert!(
            r.decided_by == slot && r.plugin.as_deref() == plugin,
            "decided by {:?} {:?}, expected {slot:?} {plugin:?}: {:#?}",
            r.decided_by,
            r.plugin,
            r.chain
        );
    }
}

fn main() {
    // `cargo bench` passes --bench (and maybe criterion flags); none is taken.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let providers = Providers::from_config(&[
        provider("mock", ProviderKind::Mock),
        provider("mock-openai", ProviderKind::OpenaiCompatible),
        provider("mock-anthropic", ProviderKind::OpenaiCompatible),
    ])
    .unwrap();
    let policy = RoutingPolicy::parse(POLICY, &|p| providers.get(p).is_some()).unwrap();
    let caps = BudgetPolicy::parse(BUDGETS).unwrap();
    let budgets = ledger(&caps);
    let health = Health::new(providers.names());
    // Measured latencies, so the registry's equivalents are really sorted.
    let now = sluice::clock::now_ms();
    for (p, m, ms) in [
        ("mock", "gpt-4o-mini", 900),
        ("mock-openai", "gpt-4o-mini", 400),
    ] {
        health.record(p, m, CallOutcome::Success, Duration::from_millis(ms), now);
    }
    let k = key();
    let store = patterns(&policy, &k);
    let env = |routers: &'static [Arc<Plugin>]| Env {
        policy: &policy,
        providers: &providers,
        routers,
        budgets: &budgets as &dyn Budgets,
        caps: &caps,
        health: &health,
        patterns: &store,
        default_provider: None,
        now_ms: now,
    };

    let auto = shaped("auto", None, &k, &providers);
    let native = measure(&rt, &env(&[]), &auto, &k, expect(Slot::GlobalDefault, None));
    line("native (auto → default)", &native);
    let named = shaped("mock:gpt-4o-mini", None, &k, &providers);
    let common = measure(&rt, &env(&[]), &named, &k, |r| {
        expect(Slot::PerMessageOverride, None)(r);
        assert_eq!(
            r.candidates.len(),
            3,
            "registry expansion: {:?}",
            r.candidates
        );
    });
    line("native (client's model, slot 1)", &common);

    let engine = PluginEngine::new(None).unwrap();
    let mut results = Vec::new();
    for (case, missing) in router_cases(&plugins_dir()) {
        if let Some(m) = missing {
            println!("note     {m} not built: measuring {} instead", case.file);
        }
        // Leaked: `Env` borrows the router list for the rest of main.
        let routers: &'static [Arc<Plugin>] = Box::leak(Box::new([load_router(&engine, &case)]));
        let s = shaped("auto", case.header, &k, &providers);
        let name: &'static str = case.name;
        let stats = measure(&rt, &env(routers), &s, &k, expect(Slot::Custom, Some(name)));
        let label = format!("wasm {} ({})", case.label, case.file);
        line(&label, &stats);
        results.push((label, stats));
    }

    let budget_ns = CHAIN_BUDGET.as_nanos() as f64;
    let pct = |s: &Stats| 100.0 * s.p99 / budget_ns;
    println!();
    for (label, s) in [
        ("native (auto → default)", &native),
        ("native (client's model, slot 1)", &common),
    ] {
        println!("budget   {label:<40}  p99 / 5 ms = {:.3} %", pct(s));
    }
    for (label, s) in &results {
        let extra = s.p50 - native.p50;
        let verdict = if extra <= PLUGIN_TARGET_NS {
            "within"
        } else {
            "OVER"
        };
        println!(
            "budget   {label:<40}  p99 / 5 ms = {:.3} %  plugin p50 − native p50 = {} ({verdict} ≤ 5 µs)",
            pct(s),
            us(extra)
        );
    }
}
