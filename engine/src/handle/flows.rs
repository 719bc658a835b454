//! Flows, as the control surface sees them: the loaded flows' names, and the replicated,
//! versioned flow store behind them (install a version, list versions and the active one,
//! activate a version, roll back: commands in the raft log, so every node serves the same
//! active version). Typed wrappers of the store's operations, with `HandleError`, belong
//! here beside these.

use super::{EngineHandle, HandleError};
use crate::flows::FlowSync;

impl EngineHandle {
    /// The names of the loaded flows, sorted.
    pub fn flow_names(&self) -> Result<Vec<String>, HandleError> {
        let mut v: Vec<String> = self
            .engine()?
            .flows
            .borrow()
            .names()
            .map(str::to_string)
            .collect();
        v.sort();
        Ok(v)
    }

    /// Flow versions: list, install, activate, roll back.
    pub fn flows(&self) -> Result<&FlowSync, HandleError> {
        Ok(&self.engine()?.flow_sync)
    }
}
