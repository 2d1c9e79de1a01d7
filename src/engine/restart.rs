//! After the consumer secret holds the current key: restarting the client's applications once
//! for that key's promotion, and recording on the key's record that it was done, so that a
//! retry or a run after a crash restarts only what was not finished.

use tracing::warn;

use super::report::RunError;
use super::set_run::SetRun;
use crate::record::KeyRecord;
use crate::restart::RestartOutcome;

impl SetRun<'_> {
    /// Restarts the applications of the key set's client for `current`, unless its record
    /// says that was done. The record is written only when every restart succeeded; a failed
    /// one is reported in the outcome (and tried again by the next run), never failing the run.
    pub(super) async fn restart_applications(
        &mut self,
        current: &KeyRecord,
    ) -> Result<Option<RestartOutcome>, RunError> {
        let Some(restarter) = &self.engine.restarter else { return Ok(None) };
        if current.restarted.is_some() || !restarter.restarts(&self.target.key_set) {
            return Ok(None);
        }
        let activated = current.activated.unwrap_or(current.created);
        let outcome = restarter.restart(&current.kid, activated, self.at.now).await;
        if !outcome.succeeded() {
            for e in outcome.failures() {
                warn!(kid = %current.kid, error = %e, "restart failed");
            }
            return Ok(Some(outcome));
        }
        let record = KeyRecord { restarted: Some(self.at.now), ..current.clone() };
        self.engine.store.update(&record).await?;
        self.dirty = true;
        self.reload().await?;
        Ok(Some(outcome))
    }
}
