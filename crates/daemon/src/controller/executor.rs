//! The one executor of effects: every change the daemon makes outside its own memory and
//! store (kernel objects, DNS, leases, files) is a list of [`Effect`]s carried out here, under
//! one of two policies:
//!
//! - [`Policy::AllOrUndo`] (building): the first failure of a step that has an undo stops
//!   the run and says where; the caller then hands the steps done to [`undo`], which
//!   reverses them (the failed one too: it may have done part of its work). Teardown steps
//!   inside such a run (a `Leave` in a reconnect) are reported and passed, as below.
//! - [`Policy::BestEffort`] (teardown, netavark's style): every step runs, and every failure
//!   is collected and reported; nothing is undone.
//!
//! Who carries an effect out is an [`Effector`]: the daemon's kernel one, or an in-memory
//! one in unit tests, so what a plan asks for and how a failure is rolled back are tested
//! without a kernel.

use std::time::{Duration, Instant};

use super::effects::Effect;
use crate::controller::error::EngineError;

/// Carries out one effect at a time. Every effect is idempotent: carrying one out again
/// (after a restart, say) changes nothing more.
#[async_trait::async_trait]
pub(super) trait Effector: Send + Sync {
    async fn apply(&self, effect: &Effect) -> Result<(), EngineError>;
}

/// How a failed step is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policy {
    /// Stop at the first failure of a step that has an undo.
    AllOrUndo,
    /// Run every step; collect every failure.
    BestEffort,
}

/// What a run did: the failures it passed over, and each step's time (for the log).
#[derive(Debug, Default)]
pub(super) struct CarriedOut {
    pub errors: Vec<StepError>,
    pub took: Vec<(&'static str, Duration)>,
}

/// A step that failed and was passed over.
#[derive(Debug)]
pub(super) struct StepError {
    pub step: &'static str,
    pub message: String,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

/// Where an all-or-undo run stopped, and why.
#[derive(Debug)]
pub(super) struct Failed {
    pub at: usize,
    pub error: EngineError,
}

/// Carries out `effects` in order under `policy`; `what` names the change in the log.
pub(super) async fn carry_out(
    effector: &dyn Effector,
    what: &str,
    effects: &[Effect],
    policy: Policy,
) -> Result<CarriedOut, Failed> {
    let mut carried = CarriedOut::default();
    for (at, effect) in effects.iter().enumerate() {
        let started = Instant::now();
        let applied = effector.apply(effect).await;
        carried.took.push((effect.name(), started.elapsed()));
        let Err(error) = applied else {
            continue;
        };
        if policy == Policy::BestEffort || effect.is_best_effort() {
            tracing::warn!(%what, step = effect.name(), of = %effect.subject(), error = %error, "step failed; going on");
            carried.errors.push(StepError {
                step: effect.name(),
                message: error.to_string(),
            });
            continue;
        }
        tracing::warn!(%what, step = effect.name(), of = %effect.subject(), error = %error, "failed; rolling back");
        return Err(Failed { at, error });
    }
    Ok(carried)
}

/// Carries out every step ([`Policy::BestEffort`]): a teardown, or work that the next
/// listing or start tries again. Hands back the failures, each already logged.
pub(super) async fn best_effort(
    effector: &dyn Effector,
    what: &str,
    effects: &[Effect],
) -> Vec<StepError> {
    match carry_out(effector, what, effects, Policy::BestEffort).await {
        Ok(carried) => carried.errors,
        // Not reached: a best-effort run passes every failure over.
        Err(failed) => vec![StepError {
            step: effects[failed.at].name(),
            message: failed.error.to_string(),
        }],
    }
}

/// Reverses the steps up to and including `failed_at`, last first. A reversal that fails
/// is logged and the rest still run: what is left over is collected at the daemon's next
/// start.
pub(super) async fn undo(effector: &dyn Effector, effects: &[Effect], failed_at: usize) {
    let end = (failed_at + 1).min(effects.len());
    for effect in effects[..end].iter().rev() {
        let Some(inverse) = effect.inverse() else {
            continue;
        };
        if let Err(e) = effector.apply(&inverse).await {
            tracing::warn!(step = effect.name(), of = %effect.subject(), error = %e, "undoing a step failed");
        }
    }
}

#[cfg(test)]
pub(super) mod test {
    //! An in-memory [`Effector`]: it records what it was asked, in order, and fails the
    //! steps it was told to.

    use parking_lot::Mutex;

    use super::*;

    #[derive(Default)]
    pub struct Recorder {
        done: Mutex<Vec<String>>,
        failing: Vec<String>,
    }

    impl Recorder {
        /// Fails every step whose [`describe`]d form starts with one of `failing`.
        pub fn failing(failing: &[&str]) -> Self {
            Self {
                done: Mutex::default(),
                failing: failing.iter().map(|s| s.to_string()).collect(),
            }
        }

        /// What was carried out (failed steps included, marked `!`).
        pub fn done(&self) -> Vec<String> {
            self.done.lock().clone()
        }
    }

    #[async_trait::async_trait]
    impl Effector for Recorder {
        async fn apply(&self, effect: &Effect) -> Result<(), EngineError> {
            let described = describe(effect);
            if self.failing.iter().any(|f| described.starts_with(f)) {
                self.done.lock().push(format!("!{described}"));
                return Err(EngineError::internal(format!("{described} failed")));
            }
            self.done.lock().push(described);
            Ok(())
        }
    }

    /// An endpoint's names, for effects that add them.
    pub fn names(endpoint: &str) -> netctl_dns::EndpointNames {
        netctl_dns::EndpointNames {
            endpoint_id: endpoint.into(),
            network_id: "n1".into(),
            network_name: "web".into(),
            internal: false,
            sandbox_id: "s1".into(),
            names: vec!["a".into()],
            addresses: vec!["10.0.0.2".parse().expect("an address")],
        }
    }

    /// An effect in a line: its name and the object it is about (`join ep1`).
    pub fn describe(effect: &Effect) -> String {
        format!("{} {}", effect.name(), effect.subject())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use netctl_drivers::cluster::Remote;

    use super::test::{names, Recorder};
    use super::*;

    /// Names, a remote endpoint's entries (the step the tests fail), names again.
    fn three_steps() -> [Effect; 3] {
        [
            Effect::AddNames(names("ep1")),
            remote("ep2"),
            Effect::AddNames(names("ep3")),
        ]
    }

    fn remote(endpoint: &str) -> Effect {
        Effect::AddRemote {
            driver: "overlay".into(),
            vni: 4097,
            endpoint: endpoint.into(),
            remote: Remote {
                mac: [0x02, 0x42, 0x0a, 0, 0, 0x02],
                addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))],
                vtep: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            },
        }
    }

    fn run(recorder: &Recorder, effects: &[Effect], policy: Policy) -> Result<CarriedOut, Failed> {
        futures::executor::block_on(carry_out(recorder, "test", effects, policy))
    }

    #[test]
    fn all_or_undo_stops_at_the_first_failure_and_says_where() {
        let recorder = Recorder::failing(&["add remote ep2"]);
        let effects = three_steps();
        let failed = run(&recorder, &effects, Policy::AllOrUndo).unwrap_err();
        assert_eq!(failed.at, 1);
        assert!(failed.error.to_string().contains("add remote ep2"));
        assert_eq!(recorder.done(), ["add names ep1", "!add remote ep2"]);
    }

    #[test]
    fn undo_reverses_the_steps_done_last_first_the_failed_one_too() {
        let recorder = Recorder::failing(&["add remote ep2"]);
        let effects = three_steps();
        let failed = run(&recorder, &effects, Policy::AllOrUndo).unwrap_err();
        futures::executor::block_on(undo(&recorder, &effects, failed.at));
        assert_eq!(
            recorder.done(),
            [
                "add names ep1",
                "!add remote ep2",
                "remove remote ep2",
                "remove names ep1",
            ]
        );
    }

    #[test]
    fn a_failed_reversal_does_not_stop_the_others() {
        let recorder = Recorder::failing(&["remove remote"]);
        let effects = [Effect::AddNames(names("ep1")), remote("ep2")];
        futures::executor::block_on(undo(&recorder, &effects, 1));
        assert_eq!(recorder.done(), ["!remove remote ep2", "remove names ep1"]);
    }

    #[test]
    fn teardown_steps_in_an_all_or_undo_run_are_reported_and_passed() {
        let recorder = Recorder::failing(&["remove names ep1"]);
        let effects = [
            Effect::RemoveNames("ep1".into()),
            Effect::AddNames(names("ep2")),
        ];
        let carried = run(&recorder, &effects, Policy::AllOrUndo).unwrap();
        assert_eq!(carried.errors.len(), 1);
        assert_eq!(carried.errors[0].step, "remove names");
        assert_eq!(recorder.done(), ["!remove names ep1", "add names ep2"]);
    }

    #[test]
    fn best_effort_runs_every_step_and_reports_every_failure() {
        let recorder = Recorder::failing(&["add remote ep1", "add names ep3"]);
        let effects = [
            remote("ep1"),
            Effect::AddNames(names("ep2")),
            Effect::AddNames(names("ep3")),
            Effect::RemoveRemote {
                driver: "overlay".into(),
                vni: 4097,
                endpoint: "ep4".into(),
            },
        ];
        let carried = run(&recorder, &effects, Policy::BestEffort).unwrap();
        let errors: Vec<String> = carried.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            [
                "add remote: add remote ep1 failed",
                "add names: add names ep3 failed"
            ]
        );
        assert_eq!(recorder.done().len(), 4);
        assert_eq!(carried.took.len(), 4);
    }
}
