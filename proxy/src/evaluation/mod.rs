//! Scoring answers off the request path. A sampled, answered request is
//! handed to a bounded queue (never waited on: a full queue drops the job
//! and counts it); a background service runs at most `workers` evaluations
//! at a time: every evaluator plugin, then, for a heuristic score below
//! `escalate_below`, the LLM judge, which calls a configured model through
//! Sluice itself so its spend is recorded like any other call and capped.
//!
//! Results are `eval.started|completed|failed` events; they feed
//! `/analytics/quality` and the routing pattern slot (the outcome of a
//! sampled request is recorded once its score is known).

mod answer;
mod judge;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};

pub use answer::answer_text;
pub use judge::{HEADER as JUDGE_HEADER, JudgeConfig};

use crate::api::Shape;
use crate::events::{EventBody, Signal};
use crate::metrics;
use crate::money::Usd;
use crate::plugins::ExchangeFacts;
use crate::routing::patterns::Outcome;
use crate::state::Gateway;

/// `[evaluation]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Share of answered requests evaluated, 0.0 – 1.0.
    pub sample_rate: f64,
    /// Evaluations running at once.
    pub workers: usize,
    /// Jobs waiting; beyond, new ones are dropped (and counted).
    pub queue: usize,
    pub judge: Option<JudgeConfig>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            sample_rate: 1.0,
            workers: 2,
            queue: 1024,
            judge: None,
        }
    }
}

impl EvalConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return Err("evaluation.sample_rate must be within 0.0 and 1.0".into());
        }
        if self.workers == 0 || self.workers > 64 || self.queue == 0 || self.queue > 1 << 20 {
            return Err(
                "evaluation.workers must be 1..=64 and evaluation.queue 1..=1048576".into(),
            );
        }
        self.judge.as_ref().map_or(Ok(()), JudgeConfig::validate)
    }
}

/// One answered request to score.
pub struct Job {
    pub facts: Arc<ExchangeFacts>,
    pub shape: Shape,
    pub key: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
    /// The judge's per-session cap counts by this (the `x-sluice-session`
    /// header, else the gateway key).
    pub session: String,
    /// What the pattern slot learns once the score is known.
    pub outcome: Option<Outcome>,
}

/// The queue and what the judge has spent.
pub struct Evaluation {
    config: EvalConfig,
    tx: mpsc::Sender<Job>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
    judge: judge::Judge,
}

impl Evaluation {
    pub fn new(config: EvalConfig) -> Evaluation {
        let (tx, rx) = mpsc::channel(config.queue);
        Evaluation {
            judge: judge::Judge::new(config.judge.clone()),
            config,
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// Whether `request_id` is in the sample: a hash, so the choice needs
    /// no random source and is the same for a request wherever it is asked.
    pub fn sampled(&self, request_id: &str) -> bool {
        let rate = self.config.sample_rate;
        if rate >= 1.0 {
            return true;
        }
        let h = request_id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        (h % 1_000_000) < (rate * 1_000_000.0) as u64
    }

    /// Whether a request carries the judge's own secret header (its calls
    /// are not evaluated in turn).
    pub fn is_judge_call(&self, header: Option<&str>) -> bool {
        self.judge.is_own(header)
    }

    /// Whether an LLM judge is configured.
    pub fn judges(&self) -> bool {
        self.judge.config.is_some()
    }

    pub fn wanted(&self) -> bool {
        self.config.sample_rate > 0.0
    }

    /// Queue `job`; a full queue drops it (and hands it back). Never
    /// waits.
    #[allow(clippy::result_large_err)]
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let m = metrics::get();
        match self.tx.try_send(job) {
            Ok(()) => {
                m.eval_queue_depth
                    .set((self.config.queue - self.tx.capacity()) as i64);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j)) => {
                m.evals_total.with_label_values(&["queue", "skipped"]).inc();
                Err(j)
            }
        }
    }
}

/// The background service that drains the queue.
pub struct Evaluator {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for Evaluator {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let ev = &self.gateway.evaluation;
        let Some(mut rx) = ev.rx.lock().expect("not poisoned").take() else {
            return;
        };
        let permits = Arc::new(Semaphore::new(ev.config.workers));
        loop {
            let job = tokio::select! {
                j = rx.recv() => match j { Some(j) => j, None => return },
                _ = shutdown.changed() => return,
            };
            metrics::get().eval_queue_depth.set(rx.len() as i64);
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let gw = self.gateway.clone();
            tokio::spawn(async move {
                run(&gw, job).await;
                drop(permit);
            });
        }
    }
}

/// Every evaluator on one job, then the judge if the heuristic is unsure.
async fn run(gw: &Gateway, job: Job) {
    let snapshot = gw.snapshot();
    let m = metrics::get();
    let subject = job.facts.request.request_id.clone();
    let mut lowest: Option<(f64, f64)> = None;
    for (i, plugin) in snapshot.plugins.evaluators.iter().enumerate() {
        let eval_id = format!("{subject}:e{i}");
        let name = plugin.name().to_owned();
        gw.events
            .emit(EventBody::EvalStarted {
                eval_id: eval_id.clone(),
                subject_id: subject.clone(),
                evaluator: name.clone(),
            })
            .await;
        match plugin.evaluate(&job.facts).await {
            Ok(Ok(v)) => {
                let score = v.score.clamp(0.0, 1.0);
                let confidence = v.confidence.clamp(0.0, 1.0);
                if !score.is_finite() || !confidence.is_finite() {
                    failed(
                        gw,
                        &eval_id,
                        &subject,
                        &name,
                        "score or confidence is not a number",
                    )
                    .await;
                    continue;
                }
                lowest = Some(match lowest {
                    Some((s, c)) if s <= score => (s, c),
                    _ => (score, confidence),
                });
                let signals = v
                    .signals
                    .into_iter()
                    .take(64)
                    .map(|s| Signal {
                        name: s.name.chars().take(64).collect(),
                        value: s.value,
                    })
                    .collect();
                completed(
                    gw,
                    &job,
                    Verdict {
                        eval_id,
                        evaluator: name,
                        score,
                        confidence,
                        judge_cost: Usd::ZERO,
                        rubric_id: v.rubric_id.chars().take(64).collect(),
                        rubric_version: v.rubric_version,
                        signals,
                    },
                )
                .await;
            }
            Ok(Err(why)) => failed(gw, &eval_id, &subject, &name, &why).await,
            Err(e) => failed(gw, &eval_id, &subject, &name, &e.to_string()).await,
        }
    }
    if let Some(judge) = &gw.evaluation.judge.config
        && lowest.is_none_or(|(s, _)| s < judge.escalate_below)
    {
        let eval_id = format!("{subject}:judge");
        gw.events
            .emit(EventBody::EvalStarted {
                eval_id: eval_id.clone(),
                subject_id: subject.clone(),
                evaluator: "llm-judge".into(),
            })
            .await;
        match gw.evaluation.judge.score(gw, &job).await {
            Ok(Some(j)) => {
                lowest = Some((j.score, j.confidence));
                m.judge_cost_usd
                    .inc_by(rust_decimal::prelude::ToPrimitive::to_f64(&j.cost.0).unwrap_or(0.0));
                completed(
                    gw,
                    &job,
                    Verdict {
                        eval_id,
                        evaluator: "llm-judge".into(),
                        score: j.score,
                        confidence: j.confidence,
                        judge_cost: j.cost,
                        rubric_id: "llm-judge".into(),
                        rubric_version: judge::RUBRIC_VERSION,
                        signals: vec![],
                    },
                )
                .await;
            }
            Ok(None) => {
                m.evals_total
                    .with_label_values(&["llm-judge", "skipped"])
                    .inc();
            }
            Err(e) => failed(gw, &eval_id, &subject, "llm-judge", &e).await,
        }
    }
    if let Some(mut outcome) = job.outcome {
        if let Some((score, confidence)) = lowest {
            // The answer's quality bounds what the status said.
            outcome.success = outcome.success.min(score);
            outcome.eval_confidence = Some(confidence);
        }
        gw.patterns.record(outcome);
    }
}

struct Verdict {
    eval_id: String,
    evaluator: String,
    score: f64,
    confidence: f64,
    judge_cost: Usd,
    rubric_id: String,
    rubric_version: u32,
    signals: Vec<Signal>,
}

async fn completed(gw: &Gateway, job: &Job, v: Verdict) {
    let m = metrics::get();
    m.evals_total
        .with_label_values(&[&v.evaluator, "completed"])
        .inc();
    m.eval_score
        .with_label_values(&[&v.evaluator])
        .observe(v.score);
    gw.events
        .emit(EventBody::EvalCompleted {
            eval_id: v.eval_id,
            subject_id: job.facts.request.request_id.clone(),
            evaluator: v.evaluator,
            gateway_key_id: job.key.clone(),
            user_id: job.user.clone(),
            team_id: job.team.clone(),
            model: job.facts.model.clone(),
            score: v.score,
            confidence: v.confidence,
            judge_cost_usd: v.judge_cost,
            rubric_id: v.rubric_id,
            rubric_version: v.rubric_version,
            signals: v.signals,
        })
        .await;
}

async fn failed(gw: &Gateway, eval_id: &str, subject: &str, evaluator: &str, why: &str) {
    metrics::get()
        .evals_total
        .with_label_values(&[evaluator, "failed"])
        .inc();
    gw.events
        .emit(EventBody::EvalFailed {
            eval_id: eval_id.to_owned(),
            subject_id: subject.to_owned(),
            evaluator: evaluator.to_owned(),
            error_message: why.chars().take(1000).collect(),
        })
        .await;
}
