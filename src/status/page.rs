//! The worker's front page (`GET /`): one section per key set with its keys on a timeline
//! (server-rendered SVG), the next event and dates, and the findings of the last evaluation.
//! One self-contained document: no script, no external asset, no key material and no URL, and
//! every text from a store, Digdir or Azure escaped.

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};

use super::StatusReport;
use crate::findings::{self, Finding, Severity};
use crate::lifecycle;
use crate::outlook::Forecast;
use crate::planner::Action;
use crate::policy::{Policy, Target};
use crate::record::{KeyRecord, Stage};

/// The page's only style sheet, inline; the CSP header allows it by its hash and nothing else.
pub const CSS: &str = include_str!("page.css");

/// The `Content-Security-Policy` the page is served with: nothing but its own inline style.
pub fn content_security_policy() -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, CSS.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// `text` safe in HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How far back the timeline reaches, and how far ahead.
const BEFORE: TimeDelta = TimeDelta::days(90);
const AFTER: TimeDelta = TimeDelta::days(365);

/// The page for `report`; `footer` says when the worker runs next (HTML-escaped here).
pub fn render(report: &StatusReport, footer: &str) -> String {
    let worst = findings::worst(&report.findings);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>jwk-rotator: {worst}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header><h1>jwk-rotator</h1><p><span class=\"badge {}\">{worst}</span> at <time datetime=\"{}\">{}</time></p></header>\n<main>\n",
        severity_class(worst),
        report.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        minute(report.now),
    );
    for (target, records) in &report.sets {
        html.push_str(&section(report, target, records.as_ref().map(Vec::as_slice)));
    }
    html.push_str(&legend());
    let _ = write!(html, "</main>\n<footer><p>{}</p></footer>\n</body>\n</html>\n", escape(footer));
    html
}

/// A time as the page shows it, to the minute.
pub fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Ok => "ok",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
        Severity::Unknown => "unknown",
    }
}

fn section(
    report: &StatusReport,
    target: &Target,
    records: Result<&[KeyRecord], &crate::store::StoreError>,
) -> String {
    let set = &target.key_set;
    let found: Vec<&Finding> = report.findings.iter().filter(|f| f.key_set == *set).collect();
    let worst = found.iter().map(|f| f.severity).max().unwrap_or(Severity::Ok);
    let mut html = format!(
        "<section id=\"{id}\">\n<h2><span class=\"badge {}\">{worst}</span> {id}</h2>\n",
        severity_class(worst),
        id = escape(&set.to_string())
    );
    match records {
        Err(e) => {
            let _ = writeln!(
                html,
                "<p class=\"error\">The store could not be read: {}</p>",
                escape(&e.to_string())
            );
        }
        Ok(records) => {
            html.push_str(&dates(report, target, records));
            let forecast = report.forecasts.get(set);
            html.push_str(&timeline(report.now, target, records, forecast));
            html.push_str(&key_table(report, target, records));
        }
    }
    html.push_str(&findings_list(&found));
    html.push_str("</section>\n");
    html
}

/// The next event and the dates of the next rotation, promotion and retirement.
fn dates(report: &StatusReport, target: &Target, records: &[KeyRecord]) -> String {
    let set = &target.key_set;
    let mut html = String::from("<dl class=\"dates\">\n");
    if let Some(next) = report.next_line(set) {
        let _ = writeln!(html, "<div class=\"next\"><dt>Next</dt><dd>{}</dd></div>", escape(&next));
    }
    let forecast = report.forecasts.get(set);
    let first = |is: fn(&Action) -> bool| forecast.and_then(|f| f.first(is)).map(|u| day(report.now, u.at));
    let rows = [
        ("Next rotation", first(|a| matches!(a, Action::Generate { .. }))),
        ("Next promotion", first(|a| matches!(a, Action::Promote { .. }))),
        ("Next retirement", first(|a| matches!(a, Action::Retire { .. }))),
        (
            "Current key expires",
            lifecycle::current(records, report.now).map(|c| day(report.now, c.expires(&target.policy))),
        ),
    ];
    for (label, value) in rows {
        let value = value.unwrap_or_else(|| "none within a year".to_owned());
        let _ = writeln!(html, "<div><dt>{label}</dt><dd>{}</dd></div>", escape(&value));
    }
    html.push_str("</dl>\n");
    html
}

/// A date as the page shows it: the day, or "now" for the next run.
fn day(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    if at <= now + TimeDelta::seconds(1) { "at the next run".to_owned() } else { at.date_naive().to_string() }
}

/// One coloured span of a key's life.
struct Span {
    stage: Stage,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// A key's stages from its own times (past, and predicted by the forecast), up to `end`.
fn spans(r: &KeyRecord, policy: &Policy, end: DateTime<Utc>) -> Vec<Span> {
    let mut out = Vec::new();
    let left = r.demoted.or(r.retired).unwrap_or(end);
    match r.activated {
        Some(activated) => {
            out.push(Span { stage: Stage::Pending, from: r.created, to: activated });
            out.push(Span { stage: Stage::Current, from: activated, to: left });
        }
        None if r.stage == Stage::Current => {
            out.push(Span { stage: Stage::Current, from: r.created, to: left })
        }
        None => out.push(Span { stage: Stage::Pending, from: r.created, to: r.retired.unwrap_or(end) }),
    }
    if let Some(demoted) = r.demoted {
        out.push(Span { stage: Stage::Previous, from: demoted, to: r.retired.unwrap_or(end) });
    }
    if let Some(retired) = r.retired {
        out.push(Span {
            stage: Stage::Retired,
            from: retired,
            to: retired + policy.retain_retired().delta(),
        });
    }
    out
}

/// `spans` as drawn: each published stage cut at the key's expiry, and the rest of it drawn
/// as `expired` (a manual promotion nobody made, say).
fn drawn(
    r: &KeyRecord,
    policy: &Policy,
    end: DateTime<Utc>,
) -> Vec<(&'static str, DateTime<Utc>, DateTime<Utc>)> {
    let expires = r.expires(policy);
    let mut out = Vec::new();
    for s in spans(r, policy, end).iter().filter(|s| s.to > s.from) {
        let stage = s.stage.as_str();
        if s.stage.is_published() && s.to > expires {
            if s.from < expires {
                out.push((stage, s.from, expires));
            }
            out.push(("expired", s.from.max(expires), s.to));
        } else {
            out.push((stage, s.from, s.to));
        }
    }
    out
}

const WIDTH: f64 = 960.0;
const ROW: f64 = 34.0;
const AXIS: f64 = 28.0;

/// Where a time falls on the timeline, between `start` and `end`.
struct Scale {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Scale {
    fn x(&self, t: DateTime<Utc>) -> f64 {
        let t = t.clamp(self.start, self.end);
        let whole = (self.end - self.start).num_seconds() as f64;
        ((t - self.start).num_seconds() as f64 / whole * WIDTH).round()
    }
}

/// The timeline: a row per key, its stages as spans, its expiry, today and the months.
fn timeline(
    now: DateTime<Utc>,
    target: &Target,
    records: &[KeyRecord],
    forecast: Option<&Forecast>,
) -> String {
    let scale = Scale { start: now - BEFORE, end: now + AFTER };
    let mut keys: Vec<&KeyRecord> = forecast.map_or(records, |f| f.records.as_slice()).iter().collect();
    let policy = &target.policy;
    keys.retain(|r| spans(r, policy, scale.end).iter().any(|s| s.to > scale.start && s.from < scale.end));
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    let height = AXIS + ROW * keys.len().max(1) as f64 + 6.0;
    let mut svg = format!(
        "<div class=\"timeline\"><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"key timeline of {}\">\n",
        escape(&target.key_set.to_string())
    );
    svg.push_str(&months(&scale, height));
    for (i, r) in keys.iter().enumerate() {
        let known = records.iter().any(|k| k.kid == r.kid);
        svg.push_str(&key_row(&scale, r, policy, AXIS + ROW * i as f64, known));
    }
    let xn = scale.x(now);
    let _ = write!(
        svg,
        "<rect class=\"future\" x=\"{xn}\" y=\"{AXIS}\" width=\"{}\" height=\"{}\"/>\n<line class=\"today\" x1=\"{xn}\" x2=\"{xn}\" y1=\"14\" y2=\"{height}\"/>\n<text class=\"today\" x=\"{}\" y=\"11\">today</text>\n</svg></div>\n",
        WIDTH - xn,
        height - AXIS,
        xn - 16.0
    );
    svg
}

/// One key's row at `y`: its kid ("predicted" when no store holds it yet), its stages and its
/// expiry.
fn key_row(scale: &Scale, r: &KeyRecord, policy: &Policy, y: f64, known: bool) -> String {
    let label = if known { r.kid.to_string() } else { format!("{} (predicted)", r.kid) };
    let mut svg = format!(
        "<text class=\"kid\" x=\"{}\" y=\"{}\">{}</text>\n",
        scale.x(r.created).min(WIDTH - 300.0),
        y + 11.0,
        escape(&label)
    );
    for (stage, from, to) in drawn(r, policy, scale.end) {
        let (x0, x1) = (scale.x(from), scale.x(to));
        let _ = writeln!(
            svg,
            "<rect class=\"{stage}\" x=\"{x0}\" y=\"{}\" width=\"{}\" height=\"12\"><title>{stage} {} to {}</title></rect>",
            y + 16.0,
            (x1 - x0).max(1.0),
            from.date_naive(),
            to.date_naive(),
        );
    }
    let expires = r.expires(policy);
    if expires > scale.start && expires < scale.end {
        let _ = writeln!(
            svg,
            "<line class=\"expiry\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"><title>{3} expires {4}</title></line>",
            scale.x(expires),
            y + 13.0,
            y + 31.0,
            escape(&r.kid.to_string()),
            expires.date_naive()
        );
    }
    svg
}

/// A tick and a label at the first of each month on the timeline.
fn months(scale: &Scale, height: f64) -> String {
    let mut svg = String::new();
    let start = scale.start;
    let mut month = NaiveDate::from_ymd_opt(start.year(), start.month(), 1);
    while let Some(m) = month.and_then(|d| d.checked_add_months(chrono::Months::new(1))) {
        let t = m.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        if t >= scale.end {
            break;
        }
        let xm = scale.x(t);
        let _ =
            writeln!(svg, "<line class=\"month\" x1=\"{xm}\" x2=\"{xm}\" y1=\"{AXIS}\" y2=\"{height}\"/>");
        if xm < WIDTH - 50.0 {
            let _ = writeln!(
                svg,
                "<text class=\"month\" x=\"{}\" y=\"24\">{}</text>",
                xm + 3.0,
                m.format("%Y-%m")
            );
        }
        month = Some(m);
    }
    svg
}

fn key_table(report: &StatusReport, target: &Target, records: &[KeyRecord]) -> String {
    if records.is_empty() {
        return "<p>No keys.</p>\n".to_owned();
    }
    let mut html = String::from(
        "<table>\n<thead><tr><th>Kid</th><th>Stage</th><th>Age</th><th>Expires</th><th>Days left</th></tr></thead>\n<tbody>\n",
    );
    for row in report.rows(target, records) {
        let _ = writeln!(
            html,
            "<tr><td class=\"kid\">{}</td><td><span class=\"stage {stage}\">{stage}</span></td><td>{}d</td><td>{}</td><td>{}</td></tr>",
            escape(&row.kid),
            row.age_days,
            row.expires.date_naive(),
            row.days_left,
            stage = row.stage,
        );
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

fn findings_list(found: &[&Finding]) -> String {
    if found.is_empty() {
        return "<p class=\"quiet\">No findings: nothing needs attention.</p>\n".to_owned();
    }
    let mut html = String::from("<ul class=\"findings\">\n");
    for f in found {
        let _ = writeln!(
            html,
            "<li class=\"{}\"><strong>{}</strong> <code>{}</code> {}</li>",
            severity_class(f.severity),
            f.severity,
            f.kind.as_str(),
            escape(&f.message)
        );
    }
    html.push_str("</ul>\n");
    html
}

fn legend() -> String {
    let mut html = String::from("<p class=\"legend\">");
    for stage in ["pending", "current", "previous", "retired", "expired"] {
        let _ = write!(html, "<span class=\"stage {stage}\">{stage}</span> ");
    }
    html.push_str("<span class=\"expiry-key\">expiry</span> Spans right of today are predicted by the planner's rules, as if a run happened whenever one of them applies.</p>\n");
    html
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::findings::FindingKind;
    use crate::jwk::PublicJwk;
    use crate::policy::Algorithm;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    /// A report of one key set whose finding carries text from outside (Digdir, Azure).
    fn report(message: &str) -> StatusReport {
        let key_set: crate::kid::KeySet = "a-TEST".parse().expect("set");
        let kid = "a-TEST.2026-11-01".parse().expect("kid");
        let public = PublicJwk { kid, alg: Algorithm::RS256, n: "n".into(), e: "AQAB".into() };
        let record = KeyRecord::new(public, Stage::Current, at("2026-11-01T06:00:00Z"));
        let finding = Finding {
            key_set: key_set.clone(),
            severity: Severity::Critical,
            kind: FindingKind::MaskinportenUnreachable,
            kid: None,
            days_left: None,
            message: message.to_owned(),
        };
        StatusReport {
            now: at("2026-11-21T06:00:00Z"),
            sets: vec![(Target { key_set, policy: Policy::default() }, Ok(vec![record]))],
            findings: vec![finding],
            through_api: BTreeSet::new(),
            outlooks: BTreeMap::new(),
            forecasts: BTreeMap::new(),
            restarts: BTreeSet::new(),
        }
    }

    #[test]
    fn text_from_outside_is_escaped() {
        let html = render(&report("Digdir said <script>alert('x')</script> & \"more\""), "<b>footer</b>");
        assert!(!html.contains("<script") && !html.contains("<b>"), "{html}");
        assert!(
            html.contains(
                "Digdir said &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"
            )
        );
        assert!(
            html.contains("<li class=\"critical\"><strong>CRITICAL</strong>"),
            "in its severity's colour"
        );
        assert!(html.contains("a-TEST.2026-11-01"));
    }

    /// The CSP allows the page's own style sheet by its hash: a changed sheet changes the hash.
    #[test]
    fn the_policy_allows_the_inline_style_by_its_hash_and_nothing_else() {
        let csp = content_security_policy();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, CSS.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        assert!(csp.starts_with("default-src 'none'; "), "{csp}");
        assert!(csp.contains(&format!("style-src 'sha256-{hash}';")), "{csp}");
        assert!(!csp.contains("script-src") && !csp.contains("unsafe"), "{csp}");
        let html = render(&report("m"), "");
        assert!(html.contains(&format!("<style>{CSS}</style>")), "the sheet is inlined byte for byte");
    }

    /// A key still current after its expiry is drawn as expired from that day on.
    #[test]
    fn a_key_past_its_expiry_is_drawn_expired() {
        let kid = "a-TEST.2025-06-01".parse().expect("kid");
        let public = PublicJwk { kid, alg: Algorithm::RS256, n: "n".into(), e: "AQAB".into() };
        let r = KeyRecord::new(public, Stage::Current, at("2025-06-01T06:00:00Z"));
        let policy = Policy::default();
        let drawn = drawn(&r, &policy, at("2027-01-01T00:00:00Z"));
        let expires = r.expires(&policy);
        assert_eq!(drawn.len(), 2);
        assert_eq!(drawn[0], ("current", r.created, expires));
        assert_eq!(drawn[1], ("expired", expires, at("2027-01-01T00:00:00Z")));
    }
}
