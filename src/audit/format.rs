//! `tessera audit` output: JSON lines, CSV, or an aligned table, one record at a time so a
//! long result streams.

use std::io::{self, Write};

use super::record::ExchangeRecord;
use crate::clock::{format_micros, format_secs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

const CSV_COLUMNS: &[&str] = &[
    "id",
    "time",
    "outcome",
    "error",
    "reason",
    "client_id",
    "subject_issuer",
    "subject",
    "subject_jti",
    "actor_issuer",
    "actor",
    "requested_audiences",
    "requested_resources",
    "requested_scopes",
    "granted_audiences",
    "granted_scopes",
    "rule",
    "token_jti",
    "expires_at",
    "revoked_at",
    "remote_addr",
    "user_agent",
    "request_id",
    "duration_us",
    "chain",
    "count",
    "truncated",
    "token_type",
    "txn",
    "grant_type",
    "grant_kind",
];

/// Table columns and their widths; longer values are cut with `…`.
const TABLE_COLUMNS: &[(&str, usize)] = &[
    ("TIME", 27),
    ("OUTCOME", 7),
    ("ERROR", 22),
    ("CLIENT", 16),
    ("ISSUER", 10),
    ("SUBJECT", 20),
    ("AUDIENCES", 24),
    ("SCOPES", 24),
    ("RULE", 20),
    // Whole: a jti is pasted into `--jti` or a revocation.
    ("TOKEN JTI", 32),
    ("REVOKED", 20),
];

pub struct Writer<W: Write> {
    out: W,
    format: Format,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W, format: Format) -> io::Result<Self> {
        match format {
            Format::Csv => writeln!(out, "{}", CSV_COLUMNS.join(","))?,
            Format::Table => {
                let header: Vec<String> = TABLE_COLUMNS
                    .iter()
                    .map(|(name, w)| cell(name, *w))
                    .collect();
                writeln!(out, "{}", header.join("  ").trim_end())?;
            }
            Format::Json => {}
        }
        Ok(Self { out, format })
    }

    pub fn write(&mut self, r: &ExchangeRecord) -> io::Result<()> {
        match self.format {
            Format::Json => writeln!(
                self.out,
                "{}",
                serde_json::to_string(r).map_err(io::Error::other)?
            ),
            Format::Csv => writeln!(self.out, "{}", csv_row(r)),
            Format::Table => writeln!(self.out, "{}", table_row(r)),
        }
    }

    /// What was written so far, taken out (an export sends it as one chunk).
    pub fn take_written(&mut self) -> W
    where
        W: Default,
    {
        std::mem::take(&mut self.out)
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn csv_row(r: &ExchangeRecord) -> String {
    let fields: Vec<String> = vec![
        r.id.clone(),
        format_micros(r.time_us),
        r.outcome.as_str().into(),
        opt(&r.error).into(),
        r.reason.clone(),
        opt(&r.client_id).into(),
        opt(&r.subject_issuer).into(),
        opt(&r.subject).into(),
        opt(&r.subject_jti).into(),
        opt(&r.actor_issuer).into(),
        opt(&r.actor).into(),
        r.requested_audiences.join(" "),
        r.requested_resources.join(" "),
        r.requested_scopes.join(" "),
        r.granted_audiences.join(" "),
        r.granted_scopes.join(" "),
        opt(&r.rule).into(),
        opt(&r.token_jti).into(),
        r.expires_at.map(format_secs).unwrap_or_default(),
        r.revoked_at.map(format_secs).unwrap_or_default(),
        opt(&r.remote_addr).into(),
        opt(&r.user_agent).into(),
        r.request_id.clone(),
        r.duration_us.to_string(),
        r.chain.clone(),
        r.count.to_string(),
        r.truncated.to_string(),
        r.token_type.clone(),
        opt(&r.txn).into(),
        r.grant_type.clone(),
        opt(&r.grant_kind).into(),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// RFC 4180 quoting; a leading `=`, `+`, `-`, `@`, tab, carriage return or line feed is
/// prefixed with `'` so a spreadsheet never runs a value an attacker chose (user agents,
/// subjects) as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn table_row(r: &ExchangeRecord) -> String {
    let time = format_micros(r.time_us);
    let revoked = r.revoked_at.map(format_secs).unwrap_or_default();
    let audiences = if r.granted_audiences.is_empty() {
        &r.requested_audiences
    } else {
        &r.granted_audiences
    };
    let scopes = if r.granted_scopes.is_empty() {
        &r.requested_scopes
    } else {
        &r.granted_scopes
    };
    let values = [
        time.as_str(),
        r.outcome.as_str(),
        opt(&r.error),
        opt(&r.client_id),
        opt(&r.subject_issuer),
        opt(&r.subject),
        &audiences.join(" "),
        &scopes.join(" "),
        opt(&r.rule),
        opt(&r.token_jti),
        revoked.as_str(),
    ];
    let cells: Vec<String> = values
        .iter()
        .zip(TABLE_COLUMNS)
        .map(|(v, (_, w))| cell(v, *w))
        .collect();
    cells.join("  ").trim_end().to_string()
}

/// Pads or cuts to exactly `width` characters; control characters and the invisible ones that
/// reorder or hide text on a terminal (bidirectional overrides and isolates, zero-width marks)
/// are shown as `?`, so a value cannot disguise itself or its neighbours.
fn cell(value: &str, width: usize) -> String {
    let clean: String = value
        .chars()
        .map(|c| if crate::text::is_hiding(c) { '?' } else { c })
        .collect();
    let count = clean.chars().count();
    if count > width {
        let mut cut: String = clean.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        format!("{clean}{}", " ".repeat(width - count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("\t=cmd()"), "'\t=cmd()");
        assert_eq!(csv_field("\r=cmd()"), "\"'\r=cmd()\"");
        assert_eq!(csv_field("-1+1"), "'-1+1");
    }

    #[test]
    fn cells_are_fixed_width() {
        assert_eq!(cell("abc", 5), "abc  ");
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(cell("a\nb", 3), "a?b");
        assert_eq!(cell("evil\u{202E}gpj.exe", 12), "evil?gpj.exe");
        assert_eq!(cell("a\u{2066}b\u{200B}c", 5), "a?b?c");
    }
}
