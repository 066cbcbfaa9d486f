//! Why this node is held back from mastership while it keeps voting: maintenance, a
//! step-down (for a while or until `resume`), failing health checks.

use crate::control::HoldChange;
use tokio::time::Instant;

/// The operator's and the checks' say on this node's eligibility.
#[derive(Debug, Default)]
pub struct Hold {
    /// `quorumctl maintenance on`.
    pub maintenance: bool,
    /// `quorumctl step-down`: `Some(None)` until `resume`, `Some(Some(t))` until `t`.
    pub step_down: Option<Option<Instant>>,
    /// Names of the health checks that fail now.
    pub failing_checks: Vec<String>,
}

impl Hold {
    /// Applies an operator's change.
    pub fn apply(&mut self, change: HoldChange, now: Instant) {
        match change {
            HoldChange::StepDown(d) => self.step_down = Some(d.map(|d| now + d)),
            HoldChange::Resume => self.step_down = None,
            HoldChange::Maintenance(on) => self.maintenance = on,
        }
    }

    /// Ends a timed step-down that ran out. Returns whether anything changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        if let Some(Some(until)) = self.step_down {
            if now >= until {
                self.step_down = None;
                return true;
            }
        }
        false
    }

    /// When a timed step-down runs out.
    pub fn deadline(&self) -> Option<Instant> {
        self.step_down.flatten()
    }

    /// Whether the node must not stand for mastership.
    pub fn held(&self) -> bool {
        self.maintenance || self.step_down.is_some() || !self.failing_checks.is_empty()
    }

    /// Reasons, for `status`, hooks (`QUORUM_REASON`) and logs. Empty when eligible.
    pub fn reasons(&self, now: Instant) -> Vec<String> {
        let mut r = Vec::new();
        if self.maintenance {
            r.push("maintenance".to_string());
        }
        match self.step_down {
            Some(None) => r.push("step-down until resume".to_string()),
            Some(Some(until)) => r.push(format!(
                "step-down for {}s more",
                until.saturating_duration_since(now).as_secs_f64().ceil()
            )),
            None => {}
        }
        for c in &self.failing_checks {
            r.push(format!("check {c} failing"));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_timed_step_down_runs_out_and_resume_ends_an_open_one() {
        let now = Instant::now();
        let mut h = Hold::default();
        assert!(!h.held());
        h.apply(HoldChange::StepDown(Some(Duration::from_secs(5))), now);
        assert!(h.held());
        assert_eq!(h.reasons(now), vec!["step-down for 5s more"]);
        assert!(!h.expire(now + Duration::from_secs(4)));
        assert!(h.expire(now + Duration::from_secs(5)));
        assert!(!h.held());
        h.apply(HoldChange::StepDown(None), now);
        assert!(!h.expire(now + Duration::from_secs(3600)));
        h.apply(HoldChange::Maintenance(true), now);
        h.apply(HoldChange::Resume, now);
        assert_eq!(h.reasons(now), vec!["maintenance"]);
    }
}
