//! Routing slot 4, PATTERN_RECOMMENDATION: outcomes of past calls by request
//! fingerprint, and a K-NN recommendation over them.
//!
//! The request path only reads: `recommend` scans an immutable index
//! published through `ArcSwap`, so a lookup never waits on a writer or on
//! I/O. `record` pushes onto a bounded queue; one thread owns the rows,
//! folds what queued into them and republishes at most every 50 ms, so a
//! burst of calls costs one rebuild. A full queue drops the outcome (it
//! is a hint, not evidence).
//!
//! Scoring is the seed's: per model across the neighbours, success and
//! cost are sample- and similarity-weighted means; cost efficiency is
//! min-max normalized within the cluster (cheapest 1.0); score = (1 −
//! cost_weight)·success + cost_weight·efficiency; confidence = (top −
//! runner_up)/top, passing when ≥ min_confidence.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

/// Categorical features of a request; `task` is the client's workload tag.
#[derive(Debug, Clone, Default)]
pub struct Features<'a> {
    pub shape: &'a str,
    pub stream: bool,
    pub tools: &'a [String],
    pub estimated_input_tokens: u64,
    pub messages: u32,
    pub tier: Option<&'a str>,
    pub team: Option<&'a str>,
    pub task: Option<&'a str>,
}

const FEATURES: usize = 8;
/// Weights of shape, stream, has_tools, tool set, token bucket, message
/// bucket, tier, team, in that order; the task tag weighs most: requests
/// of one workload cluster before anything else.
const WEIGHTS: [f64; FEATURES] = [1.0, 0.5, 1.0, 1.0, 2.0, 1.0, 0.5, 0.5];
const TASK_WEIGHT: f64 = 6.0;

/// Hashed feature values (plus the task's), stable across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    values: [u32; FEATURES],
    task: u32,
}

fn fnv(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in p.iter() {
            h ^= *b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn bucket(n: u64) -> u32 {
    64 - n.leading_zeros()
}

impl Fingerprint {
    pub fn of(f: &Features) -> Fingerprint {
        let mut tools: Vec<&str> = f.tools.iter().map(String::as_str).collect();
        tools.sort_unstable();
        tools.dedup();
        let tool_bytes: Vec<&[u8]> = tools.iter().map(|t| t.as_bytes()).collect();
        let opt = |v: Option<&str>| v.map_or(0, |s| fnv(&[s.as_bytes()]));
        Fingerprint {
            values: [
                fnv(&[f.shape.as_bytes()]),
                f.stream as u32,
                !f.tools.is_empty() as u32,
                fnv(&tool_bytes),
                bucket(f.estimated_input_tokens),
                bucket(f.messages as u64),
                opt(f.tier),
                opt(f.team),
            ],
            task: opt(f.task),
        }
    }

    /// Weighted Jaccard over the (feature, value) pairs: matching weight
    /// over the weight of the union. Identical → 1.0.
    pub fn similarity(&self, other: &Fingerprint) -> f64 {
        let mut matched = 0.0;
        let mut union = 0.0;
        for ((a, b), w) in self.values.iter().zip(&other.values).zip(WEIGHTS) {
            if a == b {
                matched += w;
                union += w;
            } else {
                union += 2.0 * w;
            }
        }
        match (self.task, other.task) {
            (0, 0) => {}
            (a, b) if a == b => {
                matched += TASK_WEIGHT;
                union += TASK_WEIGHT;
            }
            _ => union += 2.0 * TASK_WEIGHT,
        }
        matched / union
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.values
            .iter()
            .chain(std::iter::once(&self.task))
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    pub fn from_bytes(b: &[u8]) -> Option<Fingerprint> {
        if b.len() != (FEATURES + 1) * 4 {
            return None;
        }
        let word = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        let mut values = [0; FEATURES];
        for (i, v) in values.iter_mut().enumerate() {
            *v = word(i);
        }
        Some(Fingerprint {
            values,
            task: word(FEATURES),
        })
    }

    pub fn to_hex(&self) -> String {
        self.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone)]
pub struct PatternConfig {
    pub enabled: bool,
    pub cost_weight: f64,
    pub min_confidence: f64,
    /// K: fewer samples in the cluster turn the slot off.
    pub min_sample_size: u32,
    /// Evaluator scores less sure than this are not used as quality.
    pub min_eval_confidence: f64,
    /// Distinct fingerprints considered.
    pub neighbors: usize,
    pub min_similarity: f64,
    pub soft_cap_rows: usize,
    pub hard_cap_rows: usize,
    pub max_age_ms: u64,
}

impl Default for PatternConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cost_weight: 0.05,
            min_confidence: 0.05,
            min_sample_size: 5,
            min_eval_confidence: 0.5,
            neighbors: 16,
            min_similarity: 0.5,
            soft_cap_rows: 5_000,
            hard_cap_rows: 10_000,
            max_age_ms: 180 * 86_400_000,
        }
    }
}

/// One finished call. `success` is 1.0 / 0.0 from the answer, or an
/// evaluator's score (with `eval_confidence`).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub fingerprint: Fingerprint,
    /// Canonical `provider:model`.
    pub model: String,
    pub success: f64,
    pub eval_confidence: Option<f64>,
    pub cost_nanousd: u64,
    pub ts_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub model: String,
    pub score: f64,
    pub confidence: f64,
    pub sample_size: u64,
    pub runner_up: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Disabled,
    EmptyCluster,
    TooFewSamples,
    ZeroScore,
    LowConfidence,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Disabled => "disabled",
            Gate::EmptyCluster => "empty_cluster",
            Gate::TooFewSamples => "too_few_samples",
            Gate::ZeroScore => "zero_score",
            Gate::LowConfidence => "low_confidence",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub fingerprint: Fingerprint,
    pub model: String,
    pub samples: u64,
    pub success_sum: f64,
    pub cost_sum_nanousd: u128,
    pub last_seen_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub recorded: u64,
    pub dropped: u64,
    pub evicted: u64,
    pub rows: u64,
}

/// The published index: rows grouped by fingerprint, so a scan is over
/// distinct fingerprints.
#[derive(Default)]
struct Index {
    groups: Vec<(Fingerprint, Vec<Row>)>,
}

enum Msg {
    Outcome(Box<Outcome>),
    Restore(Vec<Row>),
    Flush(SyncSender<()>),
}

struct Counters {
    recorded: AtomicU64,
    dropped: AtomicU64,
    evicted: AtomicU64,
    rows: AtomicU64,
}

pub struct PatternStore {
    index: Arc<ArcSwap<Index>>,
    tx: SyncSender<Msg>,
    config: ArcSwap<PatternConfig>,
    counters: Arc<Counters>,
    /// Serializes flushes, so each waits for its own marker.
    flushing: Mutex<()>,
}

const QUEUE: usize = 16_384;
const REPUBLISH: Duration = Duration::from_millis(50);

impl PatternStore {
    pub fn new(config: PatternConfig) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let index = Arc::new(ArcSwap::from_pointee(Index::default()));
        let counters = Arc::new(Counters {
            recorded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            rows: AtomicU64::new(0),
        });
        let config = ArcSwap::from_pointee(config);
        let caps = (config.load().hard_cap_rows, config.load().max_age_ms);
        let (i, c) = (index.clone(), counters.clone());
        std::thread::Builder::new()
            .name("sluice-patterns".into())
            .spawn(move || fold(rx, &i, &c, caps))
            .expect("spawn the pattern store thread");
        Self {
            index,
            tx,
            config,
            counters,
            flushing: Mutex::new(()),
        }
    }

    pub fn record(&self, outcome: Outcome) {
        // An evaluator's score it is not sure of says nothing.
        if outcome
            .eval_confidence
            .is_some_and(|c| c < self.config.load().min_eval_confidence)
        {
            return;
        }
        match self.tx.try_send(Msg::Outcome(Box::new(outcome))) {
            Ok(()) => {
                self.counters.recorded.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn recommend(
        &self,
        fp: &Fingerprint,
        allowed: &dyn Fn(&str) -> bool,
        now_ms: u64,
    ) -> Result<Recommendation, Gate> {
        let cfg = self.config.load();
        if !cfg.enabled {
            return Err(Gate::Disabled);
        }
        let index = self.index.load();
        // The nearest distinct fingerprints, best first.
        let mut near: Vec<(f64, &Vec<Row>)> = Vec::with_capacity(cfg.neighbors + 1);
        for (f, rows) in &index.groups {
            let s = fp.similarity(f);
            if s < cfg.min_similarity {
                continue;
            }
            if near.len() == cfg.neighbors && near.last().is_some_and(|l| l.0 >= s) {
                continue;
            }
            let at = near.partition_point(|n| n.0 >= s);
            near.insert(at, (s, rows));
            near.truncate(cfg.neighbors);
        }
        // Per model: weighted success, weighted cost, samples.
        let mut models: HashMap<&str, (f64, f64, f64, u64)> = HashMap::new();
        let oldest = now_ms.saturating_sub(cfg.max_age_ms);
        for (sim, rows) in &near {
            for r in rows.iter() {
                if r.last_seen_ms < oldest || r.samples == 0 || !allowed(&r.model) {
                    continue;
                }
                let w = sim * r.samples as f64;
                let e = models.entry(&r.model).or_default();
                e.0 += sim * r.success_sum;
                e.1 += sim * r.cost_sum_nanousd as f64;
                e.2 += w;
                e.3 += r.samples;
            }
        }
        if models.is_empty() {
            return Err(Gate::EmptyCluster);
        }
        let samples: u64 = models.values().map(|m| m.3).sum();
        if samples < cfg.min_sample_size as u64 {
            return Err(Gate::TooFewSamples);
        }
        let means: Vec<(&str, f64, f64, u64)> = models
            .iter()
            .map(|(m, (succ, cost, w, n))| (*m, succ / w, cost / w, *n))
            .collect();
        let lo = means.iter().map(|m| m.2).fold(f64::INFINITY, f64::min);
        let hi = means.iter().map(|m| m.2).fold(0.0, f64::max);
        let mut scored: Vec<(f64, &str, u64)> = means
            .iter()
            .map(|(m, succ, cost, n)| {
                let eff = if hi > lo {
                    (hi - cost) / (hi - lo)
                } else {
                    1.0
                };
                let score = (1.0 - cfg.cost_weight) * succ + cfg.cost_weight * eff;
                (score, *m, *n)
            })
            .collect();
        // Ties break by name, so the same data always recommends the same.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let (top, model, _) = scored[0];
        if top <= 0.0 {
            return Err(Gate::ZeroScore);
        }
        let runner = scored.get(1);
        let confidence = (top - runner.map_or(0.0, |r| r.0)) / top;
        // A hair of float error must not flip a gate set at an exact value.
        if confidence + 1e-9 < cfg.min_confidence {
            return Err(Gate::LowConfidence);
        }
        Ok(Recommendation {
            model: model.to_owned(),
            score: top,
            confidence,
            sample_size: samples,
            runner_up: runner.map(|r| r.1.to_owned()),
        })
    }

    pub fn flush(&self) {
        let _one = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    pub fn rows(&self) -> Vec<Row> {
        self.index
            .load()
            .groups
            .iter()
            .flat_map(|(_, rows)| rows.iter().cloned())
            .collect()
    }

    pub fn restore(&self, rows: Vec<Row>) {
        let _ = self.tx.send(Msg::Restore(rows));
        self.flush();
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            recorded: c.recorded.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            evicted: c.evicted.load(Ordering::Relaxed),
            rows: c.rows.load(Ordering::Relaxed),
        }
    }

    /// A reloaded policy's settings; the rows stay. The caps the folding
    /// thread enforces are fixed at start.
    pub fn set_config(&self, config: PatternConfig) {
        self.config.store(Arc::new(config));
    }
}

/// The thread that owns the rows.
fn fold(rx: Receiver<Msg>, index: &ArcSwap<Index>, c: &Counters, (cap, max_age): (usize, u64)) {
    let mut rows: HashMap<(Fingerprint, String), Row> = HashMap::new();
    let mut dirty = false;
    let mut last = Instant::now();
    loop {
        let wait = if dirty {
            REPUBLISH.saturating_sub(last.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        let mut flushed = None;
        let next = match rx.try_recv() {
            Ok(msg) => Ok(msg),
            Err(TryRecvError::Disconnected) => return,
            // Outcomes are coming: sleep to the next publication instead of
            // blocking, so senders queue without waking this thread each.
            Err(TryRecvError::Empty) if dirty => {
                std::thread::sleep(wait);
                Err(RecvTimeoutError::Timeout)
            }
            Err(TryRecvError::Empty) => rx.recv_timeout(wait),
        };
        match next {
            Ok(Msg::Outcome(o)) => {
                let o = *o;
                let quality = o.success.clamp(0.0, 1.0);
                let r = rows
                    .entry((o.fingerprint, o.model.clone()))
                    .or_insert_with(|| Row {
                        fingerprint: o.fingerprint,
                        model: o.model,
                        samples: 0,
                        success_sum: 0.0,
                        cost_sum_nanousd: 0,
                        last_seen_ms: 0,
                    });
                r.samples += 1;
                r.success_sum += quality;
                r.cost_sum_nanousd += o.cost_nanousd as u128;
                r.last_seen_ms = r.last_seen_ms.max(o.ts_ms);
                dirty = true;
            }
            Ok(Msg::Restore(list)) => {
                for r in list {
                    rows.insert((r.fingerprint, r.model.clone()), r);
                }
                dirty = true;
            }
            Ok(Msg::Flush(done)) => flushed = Some(done),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if dirty && (flushed.is_some() || last.elapsed() >= REPUBLISH) {
            let newest = rows.values().map(|r| r.last_seen_ms).max().unwrap_or(0);
            let before = rows.len();
            rows.retain(|_, r| r.last_seen_ms >= newest.saturating_sub(max_age));
            if rows.len() > cap {
                let mut ages: Vec<u64> = rows.values().map(|r| r.last_seen_ms).collect();
                ages.sort_unstable();
                let cut = ages[rows.len() - cap];
                rows.retain(|_, r| r.last_seen_ms >= cut);
                // Ties at the cut may leave a few over: drop them too.
                let over = rows.len().saturating_sub(cap);
                let mut dropped = 0;
                rows.retain(|_, r| {
                    if dropped < over && r.last_seen_ms == cut {
                        dropped += 1;
                        false
                    } else {
                        true
                    }
                });
            }
            c.evicted
                .fetch_add((before - rows.len()) as u64, Ordering::Relaxed);
            c.rows.store(rows.len() as u64, Ordering::Relaxed);
            let mut groups: HashMap<Fingerprint, Vec<Row>> = HashMap::new();
            for r in rows.values() {
                groups.entry(r.fingerprint).or_default().push(r.clone());
            }
            index.store(Arc::new(Index {
                groups: groups.into_iter().collect(),
            }));
            dirty = false;
            last = Instant::now();
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn fp(task: &str, tokens: u64) -> Fingerprint {
        Fingerprint::of(&Features {
            shape: "openai",
            estimated_input_tokens: tokens,
            messages: 1,
            task: Some(task),
            ..Features::default()
        })
    }

    fn outcome(f: Fingerprint, model: &str, success: f64, cost: u64) -> Outcome {
        Outcome {
            fingerprint: f,
            model: model.into(),
            success,
            eval_confidence: None,
            cost_nanousd: cost,
            ts_ms: 1_000,
        }
    }

    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn a_model_that_fails_loses_to_one_that_succeeds() {
        let s = PatternStore::new(PatternConfig::default());
        let f = fp("summarize", 300);
        for _ in 0..5 {
            s.record(outcome(f, "m:bad", 0.0, 10));
            s.record(outcome(f, "m:good", 1.0, 20));
        }
        s.flush();
        let r = s.recommend(&f, &all, 2_000).unwrap();
        assert_eq!(r.model, "m:good");
        assert_eq!(r.sample_size, 10);
        assert_eq!(r.runner_up.as_deref(), Some("m:bad"));
        // Without the good one, the bad one alone scores only its cost term.
        let only_bad = |m: &str| m == "m:bad";
        let r = s.recommend(&f, &only_bad, 2_000).unwrap();
        assert!((r.score - 0.05).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn equal_success_the_cheaper_wins_by_exactly_the_cost_term() {
        let s = PatternStore::new(PatternConfig::default());
        let f = fp("t", 100);
        for _ in 0..5 {
            s.record(outcome(f, "m:cheap", 1.0, 1));
            s.record(outcome(f, "m:dear", 1.0, 2));
        }
        s.flush();
        let r = s.recommend(&f, &all, 2_000).unwrap();
        assert_eq!(r.model, "m:cheap");
        assert!((r.score - 1.0).abs() < 1e-9);
        // (1.0 - 0.95) / 1.0 = 0.05 passes min_confidence 0.05 (≥).
        assert!((r.confidence - 0.05).abs() < 1e-9);
    }

    #[test]
    fn the_gates() {
        let s = PatternStore::new(PatternConfig::default());
        let f = fp("t", 100);
        assert_eq!(s.recommend(&f, &all, 0), Err(Gate::EmptyCluster));
        for _ in 0..4 {
            s.record(outcome(f, "m:a", 1.0, 1));
        }
        s.flush();
        assert_eq!(s.recommend(&f, &all, 2_000), Err(Gate::TooFewSamples));
        let z = fp("zero", 100);
        for _ in 0..5 {
            s.record(outcome(z, "m:a", 0.0, 1));
            s.record(outcome(z, "m:b", 0.0, 1));
        }
        s.flush();
        // Equal cost: both efficiencies are 1, scores 0.05 each: a tie.
        assert_eq!(s.recommend(&z, &all, 2_000), Err(Gate::LowConfidence));
        // Another workload is not in this cluster.
        assert_eq!(
            s.recommend(&fp("other", 100_000), &all, 2_000),
            Err(Gate::EmptyCluster)
        );
        s.set_config(PatternConfig {
            enabled: false,
            ..PatternConfig::default()
        });
        assert_eq!(s.recommend(&f, &all, 2_000), Err(Gate::Disabled));
    }

    #[test]
    fn zero_score_when_nothing_ever_succeeded_and_cost_does_not_count() {
        let s = PatternStore::new(PatternConfig {
            cost_weight: 0.0,
            ..PatternConfig::default()
        });
        let f = fp("t", 100);
        for _ in 0..5 {
            s.record(outcome(f, "m:a", 0.0, 1));
        }
        s.flush();
        assert_eq!(s.recommend(&f, &all, 2_000), Err(Gate::ZeroScore));
    }

    #[test]
    fn similarity_is_weighted_jaccard() {
        let a = fp("t", 100);
        assert_eq!(a.similarity(&a), 1.0);
        let b = fp("t", 100_000);
        let s = a.similarity(&b);
        assert!(s > 0.5 && s < 1.0, "{s}");
        assert!(a.similarity(&fp("u", 100)) < 0.5);
        assert_eq!(Fingerprint::from_bytes(&a.to_bytes()), Some(a));
        assert_eq!(a.to_hex().len(), 72);
    }

    #[test]
    fn age_and_the_hard_cap_evict_the_least_recently_seen() {
        let cfg = PatternConfig {
            hard_cap_rows: 3,
            ..PatternConfig::default()
        };
        let s = PatternStore::new(cfg);
        for i in 0..5u64 {
            let mut o = outcome(fp(&format!("t{i}"), 10), "m:a", 1.0, 1);
            o.ts_ms = 1_000 + i;
            s.record(o);
        }
        s.flush();
        let rows = s.rows();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.last_seen_ms >= 1_002));
        assert_eq!(s.stats().evicted, 2);
        // Old rows do not count in a recommendation.
        let f = fp("t4", 10);
        for _ in 0..5 {
            s.record(outcome(f, "m:a", 1.0, 1));
        }
        s.flush();
        assert!(s.recommend(&f, &all, 1_000).is_ok());
        let past = 1_000 + PatternConfig::default().max_age_ms + 10;
        assert_eq!(s.recommend(&f, &all, past), Err(Gate::EmptyCluster));
    }

    #[test]
    fn restore_round_trips_and_concurrent_use_is_safe() {
        let s = Arc::new(PatternStore::new(PatternConfig::default()));
        let f = fp("t", 100);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let s = s.clone();
                scope.spawn(move || {
                    for i in 0..500 {
                        s.record(outcome(f, &format!("m:{}", (t + i) % 3), 1.0, i as u64));
                        let _ = s.recommend(&f, &all, 2_000);
                    }
                });
            }
        });
        s.flush();
        let rows = s.rows();
        assert_eq!(rows.iter().map(|r| r.samples).sum::<u64>(), 2_000);
        let t = PatternStore::new(PatternConfig::default());
        t.restore(rows.clone());
        let mut a = t.rows();
        let mut b = rows;
        a.sort_by(|x, y| x.model.cmp(&y.model));
        b.sort_by(|x, y| x.model.cmp(&y.model));
        assert_eq!(a, b);
    }

    #[test]
    fn ten_thousand_rows_are_scanned_quickly() {
        let s = PatternStore::new(PatternConfig::default());
        for i in 0..10_000u64 {
            let f = Fingerprint::of(&Features {
                shape: "openai",
                estimated_input_tokens: i % 64,
                messages: (i % 16) as u32,
                task: Some(&format!("w{}", i % 40)),
                team: Some(&format!("t{}", i % 7)),
                ..Features::default()
            });
            s.record(outcome(f, &format!("m:{}", i % 3), 1.0, i));
        }
        s.flush();
        let f = fp("w3", 12);
        let t = Instant::now();
        for _ in 0..100 {
            let _ = s.recommend(&f, &all, 2_000);
        }
        eprintln!(
            "recommend over {} rows: {:?} each",
            s.stats().rows,
            t.elapsed() / 100
        );
    }
}
