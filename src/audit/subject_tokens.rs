//! Finding records by subject token (the `subject_jti` filter, revocation and lineage) without
//! an index keyed by the token on every record: the database keeps one row per distinct subject
//! token with its subject and the span of time its records lie in (a trigger, see the
//! `subject_token_spans` migration), and the records are found through the subject index within
//! those spans.

use diesel::prelude::*;

use crate::store::schema::exchanges::dsl as x;
use crate::store::schema::{exchanges, subject_tokens as st};
use crate::store::{DbConnection, MultiBackend};

/// Subjects named in a query at most. A jti shared by more subjects (an issuer reusing one)
/// is looked up by time and jti alone: slower, but a query the database can still run, where
/// one bound parameter per subject would exceed its limit.
const MAX_SUBJECTS: usize = 500;

/// Where the records of one subject token lie.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = st)]
pub struct Span {
    pub subject_jti: String,
    pub subject_issuer: String,
    pub subject: String,
    pub first_us: i64,
    /// Exclusive.
    pub until_us: i64,
}

/// The spans of these subject tokens (`jti`s, a few hundred at most: one bound parameter
/// each), of any issuer or only of `issuers`.
pub fn spans(
    conn: &mut DbConnection,
    jtis: &[String],
    issuers: Option<&[String]>,
) -> QueryResult<Vec<Span>> {
    let mut q = st::table
        .filter(st::subject_jti.eq_any(jtis))
        .select(Span::as_select())
        .into_boxed();
    if let Some(issuers) = issuers {
        q = q.filter(st::subject_issuer.eq_any(issuers));
    }
    q.load(conn)
}

/// Conditions that every record of some spans meets, to narrow a query on their tokens down to
/// their subjects' records in their time: with `subject_jti` among theirs, the records of those
/// tokens and no others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Within {
    jtis: Vec<String>,
    issuers: Vec<String>,
    /// `None`: too many to name (see `MAX_SUBJECTS`).
    subjects: Option<Vec<String>>,
    from_us: i64,
    until_us: i64,
}

impl Within {
    /// `None` when there are no spans: no record has any of those tokens.
    pub fn spans(spans: &[Span]) -> Option<Self> {
        let mut jtis: Vec<String> = spans.iter().map(|s| s.subject_jti.clone()).collect();
        let mut issuers: Vec<String> = spans.iter().map(|s| s.subject_issuer.clone()).collect();
        let mut subjects: Vec<String> = spans.iter().map(|s| s.subject.clone()).collect();
        for list in [&mut jtis, &mut issuers, &mut subjects] {
            list.sort_unstable();
            list.dedup();
        }
        Some(Self {
            from_us: spans.iter().map(|s| s.first_us).min()?,
            until_us: spans.iter().map(|s| s.until_us).max()?,
            jtis,
            issuers,
            subjects: (subjects.len() <= MAX_SUBJECTS).then_some(subjects),
        })
    }

    pub fn apply<'a>(
        self,
        q: exchanges::BoxedQuery<'a, MultiBackend>,
    ) -> exchanges::BoxedQuery<'a, MultiBackend> {
        let q = match self.subjects {
            Some(subjects) => q.filter(x::subject.eq_any(subjects)),
            None => q,
        };
        q.filter(x::time_us.ge(self.from_us))
            .filter(x::time_us.lt(self.until_us))
            .filter(x::subject_issuer.eq_any(self.issuers))
            .filter(x::subject_jti.eq_any(self.jtis))
    }
}

/// Forgets spans that ended before `cutoff_us` and have no record left (retention has pruned
/// them), one batch of the spans that ended at or after `from_us`: returns how many went and
/// where the next batch starts (`None` when this was the last). A span whose records are not
/// all pruned yet stays for a later pass.
pub fn prune_batch(
    conn: &mut DbConnection,
    cutoff_us: i64,
    from_us: i64,
) -> QueryResult<(usize, Option<i64>)> {
    const BATCH: i64 = 1_000;
    let ended: Vec<Span> = st::table
        .filter(st::until_us.lt(cutoff_us))
        .filter(st::until_us.ge(from_us))
        .order(st::until_us)
        .limit(BATCH)
        .select(Span::as_select())
        .load(conn)?;
    let next = match ended.last() {
        Some(last) if ended.len() as i64 == BATCH => Some(last.until_us.saturating_add(1)),
        _ => None,
    };
    let pruned = conn.transaction(|c| {
        let mut pruned = 0;
        for span in &ended {
            let Some(within) = Within::spans(std::slice::from_ref(span)) else {
                continue;
            };
            let left: Option<String> = within
                .apply(x::exchanges.into_boxed())
                .select(x::id)
                .first(c)
                .optional()?;
            if left.is_none() {
                // Checked again: a record just written may have moved the span on.
                pruned += diesel::delete(
                    st::table
                        .find((&span.subject_jti, &span.subject_issuer, &span.subject))
                        .filter(st::until_us.lt(cutoff_us)),
                )
                .execute(c)?;
            }
        }
        QueryResult::Ok(pruned)
    })?;
    Ok((pruned, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(jti: &str, issuer: &str, subject: &str, first_us: i64, until_us: i64) -> Span {
        Span {
            subject_jti: jti.into(),
            subject_issuer: issuer.into(),
            subject: subject.into(),
            first_us,
            until_us,
        }
    }

    #[test]
    fn bounds_cover_every_span_and_nothing_is_found_without_one() {
        assert_eq!(Within::spans(&[]), None);
        let within = Within::spans(&[
            span("j", "corp", "bob", 50, 90),
            span("j", "corp", "alice", 10, 60),
            span("k", "partner", "alice", 20, 200),
        ])
        .expect("spans");
        assert_eq!(
            within,
            Within {
                jtis: vec!["j".into(), "k".into()],
                issuers: vec!["corp".into(), "partner".into()],
                subjects: Some(vec!["alice".into(), "bob".into()]),
                from_us: 10,
                until_us: 200,
            }
        );
    }

    #[test]
    fn too_many_subjects_are_not_named() {
        let many: Vec<Span> = (0..=MAX_SUBJECTS)
            .map(|n| span("j", "corp", &format!("user-{n}"), 0, 1))
            .collect();
        assert_eq!(Within::spans(&many).map(|w| w.subjects), Some(None));
        let enough = &many[..MAX_SUBJECTS];
        let named = Within::spans(enough).and_then(|w| w.subjects);
        assert_eq!(named.map(|s| s.len()), Some(MAX_SUBJECTS));
    }
}
