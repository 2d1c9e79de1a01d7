//! `status --format markdown`: GitHub-flavoured markdown for a CI job's summary, a table of keys
//! and the next event per key set, then the findings.

use std::io::{self, Write};

use super::StatusReport;
use crate::findings;

/// `text` in one table cell or line: no line breaks, `|` escaped, and no HTML that GitHub
/// would render (messages may hold text from Digdir or Azure).
pub fn cell(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
}

impl StatusReport {
    pub fn write_markdown(&self, out: &mut impl Write) -> io::Result<()> {
        let worst = findings::worst(&self.findings);
        writeln!(out, "## jwk-rotator status: {worst}\n")?;
        writeln!(out, "At {}.\n", self.now.to_rfc3339())?;
        for (t, records) in &self.sets {
            writeln!(out, "### {}\n", cell(&t.key_set.to_string()))?;
            let records = match records {
                Ok(records) => records,
                Err(e) => {
                    writeln!(out, "The store could not be read: {}\n", cell(&e.to_string()))?;
                    continue;
                }
            };
            if let Some(next) = self.next_line(&t.key_set) {
                writeln!(out, "**Next:** {}\n", cell(&next))?;
            }
            if records.is_empty() {
                writeln!(out, "(no keys)\n")?;
                continue;
            }
            writeln!(out, "| Kid | Stage | Age | Expires | Days left |")?;
            writeln!(out, "| --- | --- | ---: | --- | ---: |")?;
            for row in self.rows(t, records) {
                writeln!(
                    out,
                    "| `{}` | {} | {}d | {} | {} |",
                    row.kid,
                    row.stage,
                    row.age_days,
                    row.expires.date_naive(),
                    row.days_left
                )?;
            }
            writeln!(out)?;
        }
        self.write_markdown_findings(out)
    }

    fn write_markdown_findings(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "### Findings\n")?;
        if self.findings.is_empty() {
            return writeln!(out, "OK: {} key sets, nothing needs attention", self.sets.len());
        }
        writeln!(out, "| Severity | Key set | Finding |")?;
        writeln!(out, "| --- | --- | --- |")?;
        for f in &self.findings {
            writeln!(out, "| {} | {} | {} |", f.severity, cell(&f.key_set.to_string()), cell(&f.message))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn a_cell_keeps_to_its_row_and_renders_no_html() {
        assert_eq!(cell("a|b\nc <img src=x> & d"), "a\\|b c &lt;img src=x&gt; &amp; d");
    }
}
