//! A record's lineage as a tree (SPEC §6, shown by the console): upward, the records that
//! minted the token it was exchanged from, and theirs; downward, the tokens minted from the one
//! it minted, as subject or as actor token, however many hops. Bounded in nodes and depth, so a
//! token re-exchanged millions of times still answers in the time of a page.

use diesel::QueryResult;

use super::query::{self, Filters};
use super::record::ExchangeRecord;
use crate::store::DbConnection;

/// Records read for one tree at most, up and down together.
pub const MAX_NODES: usize = 200;
/// Hops followed each way at most.
pub const MAX_DEPTH: usize = 16;

pub struct Lineage {
    /// The records that minted the subject token, its subject token and so on: nearest first.
    pub ancestors: Vec<ExchangeRecord>,
    pub descendants: Vec<Node>,
    /// Whether the bounds left some of it out.
    pub cut: bool,
}

pub struct Node {
    pub record: ExchangeRecord,
    /// How the parent's token took part: as the subject token, or as the actor token.
    pub as_actor: bool,
    pub children: Vec<Node>,
}

/// `local` names the issuer entries that stand for this server: a token is followed up or down
/// only as this server's, never by a `jti` another issuer (or a client's assertion) happens to
/// share with it.
pub fn of(
    conn: &mut DbConnection,
    record: &ExchangeRecord,
    local: &[String],
) -> QueryResult<Lineage> {
    let is_local = |issuer: &Option<String>| issuer.as_ref().is_some_and(|i| local.contains(i));
    let mut budget = MAX_NODES;
    let mut cut = false;
    let mut ancestors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    seen.insert(record.id.clone());
    let mut up = record
        .subject_jti
        .clone()
        .filter(|_| is_local(&record.subject_issuer));
    while let Some(jti) = up.take() {
        if ancestors.len() >= MAX_DEPTH || budget == 0 {
            cut = true;
            break;
        }
        let filters = Filters {
            jti: Some(jti),
            outcome: Some("granted".into()),
            ..Default::default()
        };
        let Some(parent) = query::page(conn, &filters, 1, None)?.pop() else {
            break;
        };
        if !seen.insert(parent.id.clone()) {
            break;
        }
        budget -= 1;
        up = parent
            .subject_jti
            .clone()
            .filter(|_| is_local(&parent.subject_issuer));
        ancestors.push(parent);
    }
    let descendants = match &record.token_jti {
        Some(jti) => children(conn, jti, local, 1, &mut budget, &mut seen, &mut cut)?,
        None => Vec::new(),
    };
    Ok(Lineage {
        ancestors,
        descendants,
        cut,
    })
}

/// The tokens minted from `jti`, depth first, oldest first at each level.
fn children(
    conn: &mut DbConnection,
    jti: &str,
    local: &[String],
    depth: usize,
    budget: &mut usize,
    seen: &mut std::collections::HashSet<String>,
    cut: &mut bool,
) -> QueryResult<Vec<Node>> {
    if depth > MAX_DEPTH || *budget == 0 {
        *cut = true;
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for as_actor in [false, true] {
        let filters = Filters {
            subject_jti: (!as_actor).then(|| jti.to_string()),
            actor_jti: as_actor.then(|| jti.to_string()),
            outcome: Some("granted".into()),
            ..Default::default()
        };
        // One more than the budget: to know whether it cut any.
        let limit = (*budget + 1) as i64;
        let mut records = query::page(conn, &filters, limit, None)?;
        if records.len() > *budget {
            *cut = true;
            records.truncate(*budget);
        }
        // Minted from this server's token: the subject (or actor) came from this server.
        records.retain(|r| {
            let issuer = if as_actor {
                &r.actor_issuer
            } else {
                &r.subject_issuer
            };
            issuer.as_ref().is_some_and(|i| local.contains(i)) && seen.insert(r.id.clone())
        });
        *budget -= records.len();
        found.extend(records.into_iter().map(|r| (r, as_actor)));
    }
    found.sort_by(|(a, _), (b, _)| (a.time_us, &a.id).cmp(&(b.time_us, &b.id)));
    let mut nodes = Vec::with_capacity(found.len());
    for (record, as_actor) in found {
        let children = match &record.token_jti {
            Some(jti) => children(conn, jti, local, depth + 1, budget, seen, cut)?,
            None => Vec::new(),
        };
        nodes.push(Node {
            record,
            as_actor,
            children,
        });
    }
    Ok(nodes)
}
