//! What `status` reports about every key set at one moment, and its renderings: the table and
//! the JSON on stdout, the markdown job summary, and the worker's page.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::engine::{Engine, Evaluation};
use crate::findings::{self, Finding};
use crate::kid::KeySet;
use crate::moment::Moment;
use crate::outlook::{self, Forecast, Outlook};
use crate::policy::Target;
use crate::record::KeyRecord;
use crate::store::StoreError;

mod markdown;
pub mod page;
mod restarts;
mod text;

pub use markdown::cell as markdown_cell;

/// How far ahead the worker's page and `status` forecast the planner's runs.
pub const HORIZON: TimeDelta = TimeDelta::days(400);

/// Keys, findings and what comes next for every key set asked for, at one moment.
#[derive(Debug)]
pub struct StatusReport {
    pub now: DateTime<Utc>,
    pub sets: Vec<(Target, Result<Vec<KeyRecord>, StoreError>)>,
    pub findings: Vec<Finding>,
    /// Key sets registered through Digdir's API, which need no steps in Samarbeidsportalen.
    pub through_api: BTreeSet<KeySet>,
    /// Each readable key set's next event, or what a person must do.
    pub outlooks: BTreeMap<KeySet, Outlook>,
    /// Each readable key set's runs ahead, up to [`HORIZON`].
    pub forecasts: BTreeMap<KeySet, Forecast>,
    /// Key sets whose client names applications to restart (`[[client.restart]]`).
    pub restarts: BTreeSet<KeySet>,
}

#[derive(Serialize)]
struct KeyRow {
    kid: String,
    stage: &'static str,
    created: DateTime<Utc>,
    age_days: i64,
    expires: DateTime<Utc>,
    days_left: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<DateTime<Utc>>,
}

impl StatusReport {
    /// Loads the key sets in one store call and evaluates each, as the worker does.
    pub async fn gather(engine: &Engine, targets: &[Target], at: Moment) -> StatusReport {
        let evaluation = engine.evaluate(targets, at).await;
        StatusReport::new(engine, targets, evaluation, at)
    }

    /// The report of one evaluation at `at`.
    pub fn new(engine: &Engine, targets: &[Target], evaluation: Evaluation, at: Moment) -> StatusReport {
        let Evaluation { loaded, findings, observed } = evaluation;
        let (mut outlooks, mut forecasts) = (BTreeMap::new(), BTreeMap::new());
        let sets = targets
            .iter()
            .map(|t| {
                let records = findings::records_of(&loaded, &t.key_set).map(<[KeyRecord]>::to_vec);
                if let Ok(records) = &records {
                    let seen = engine.seen(t, records, &observed, at);
                    let set = &t.key_set;
                    outlooks.insert(set.clone(), outlook::outlook(set, records, &t.policy, at, &seen));
                    let ahead =
                        outlook::forecast(set, records, &t.policy, at, &seen.request, at.now + HORIZON);
                    forecasts.insert(set.clone(), ahead);
                }
                (t.clone(), records)
            })
            .collect();
        let through_api = observed.registered.into_keys().collect();
        let restarts = observed.restarts;
        StatusReport { now: at.now, sets, findings, through_api, outlooks, forecasts, restarts }
    }

    fn rows(&self, target: &Target, records: &[KeyRecord]) -> Vec<KeyRow> {
        let mut recs: Vec<&KeyRecord> = records.iter().collect();
        recs.sort_by(|a, b| b.kid.cmp(&a.kid));
        recs.into_iter()
            .map(|r| {
                let expires = r.expires(&target.policy);
                KeyRow {
                    kid: r.kid.to_string(),
                    stage: r.stage.as_str(),
                    created: r.created,
                    age_days: (self.now - r.created).num_days(),
                    expires,
                    days_left: (expires - self.now).num_days(),
                    published: r.published,
                }
            })
            .collect()
    }

    /// The one-line outlook of `set`, as every rendering shows it.
    fn next_line(&self, set: &KeySet) -> Option<String> {
        self.outlooks.get(set).map(|o| o.summary(self.now))
    }
}
