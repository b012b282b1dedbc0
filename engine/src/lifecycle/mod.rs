//! Lifecycle: bucket rules that expire objects, old versions, lone delete markers and stale
//! multipart uploads ([`rules`]), applied by passes of a background job ([`run`]).

pub mod rules;
pub mod run;

pub use rules::{LifecycleConfig, Rule};
pub use run::{Action, ActionKind, Counters, LifecycleReport, LifecycleRun, LifecycleTotals};
