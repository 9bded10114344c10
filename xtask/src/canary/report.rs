//! The canary's per-step report: step, result, duration and what was seen.
//! Once a step fails the rest are listed as skipped (each builds on the
//! previous one's state).

use std::time::{Duration, Instant};

pub(crate) struct StepResult {
    pub(crate) name: String,
    /// None: skipped after an earlier failure.
    pub(crate) ok: Option<bool>,
    pub(crate) duration: Option<Duration>,
    pub(crate) detail: String,
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) steps: Vec<StepResult>,
}

impl Report {
    pub(crate) fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.ok == Some(false))
    }

    /// Runs `body` as the next step unless an earlier one failed.
    pub(crate) fn step(&mut self, name: &str, body: impl FnOnce() -> anyhow::Result<String>) {
        if self.failed() {
            self.skip(name);
            return;
        }
        let clock = Instant::now();
        let result = body();
        let duration = Some(clock.elapsed());
        let (ok, detail) = match result {
            Ok(detail) => (true, detail),
            Err(err) => (false, format!("{err:#}")),
        };
        self.push(name, ok, duration, detail);
    }

    /// A step someone else timed (the installer's own rollout steps).
    pub(crate) fn push(
        &mut self,
        name: &str,
        ok: bool,
        duration: Option<Duration>,
        detail: String,
    ) {
        self.steps.push(StepResult {
            name: name.to_owned(),
            ok: Some(ok),
            duration,
            detail,
        });
    }

    pub(crate) fn skip(&mut self, name: &str) {
        self.steps.push(StepResult {
            name: name.to_owned(),
            ok: None,
            duration: None,
            detail: "not run: an earlier step failed".to_owned(),
        });
    }

    pub(crate) fn print(&self) {
        let width = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(4);
        println!(
            "{:<width$}  {:<6}  {:>9}  detail",
            "step", "result", "duration"
        );
        for step in &self.steps {
            let result = match step.ok {
                Some(true) => "ok",
                Some(false) => "FAILED",
                None => "skip",
            };
            let duration = step
                .duration
                .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "-".to_owned());
            println!(
                "{:<width$}  {result:<6}  {duration:>9}  {}",
                step.name, step.detail
            );
        }
        let failed = self.steps.iter().filter(|s| s.ok == Some(false)).count();
        let passed = self.steps.iter().filter(|s| s.ok == Some(true)).count();
        println!(
            "canary: {passed} steps ok, {failed} failed, {} skipped",
            self.steps.len() - passed - failed
        );
    }
}
