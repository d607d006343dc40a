//! The audit screens: a search over every filter of SPEC §6, in the URL so a search can be
//! shared, newest first, a page at a time; and a record's detail.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::html::{Viewer, error, esc, failed, page_response, url_value};
use super::{SessionKey, SignedIn};
use crate::audit::ExchangeRecord;
use crate::audit::query::{self, Cursor};
use crate::state::AppState;

/// The filters the search form offers, in its order, with their labels.
const FILTERS: &[(&str, &str)] = &[
    ("subject", "Subject"),
    ("actor", "Actor (delegation)"),
    ("client", "Client"),
    ("issuer", "Issuer id"),
    ("audience", "Audience or resource"),
    ("rule", "Rule"),
    ("outcome", "Outcome (granted, denied)"),
    ("error", "Error"),
    ("jti", "Minted token jti"),
    ("subject_jti", "Subject token jti (lineage)"),
    ("token_type", "Token type"),
    ("txn", "Transaction (txn)"),
    ("grant_type", "Grant type"),
    ("grant_kind", "Grant kind"),
    ("since", "Since (RFC 3339 or 1h)"),
    ("until", "Until"),
    ("limit", "Per page (50; up to 1000)"),
];

/// Records a page shows unless the URL says otherwise.
const PAGE: i64 = 50;

pub async fn search(
    SignedIn(session): SignedIn,
    req: HttpRequest,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    let asked = asked_filters(req.query_string());
    let form = filter_form(asked.as_deref().unwrap_or_default());
    let (filters, limit, cursor) = match filters_of(req.query_string()) {
        Ok(parsed) => parsed,
        Err(why) => {
            let body = format!("{form}{}", error(&why));
            return page_response(
                HttpResponse::BadRequest(),
                "Exchanges",
                &body,
                Some(&viewer),
            );
        }
    };
    let asked = asked.unwrap_or_default();
    let read = state
        .store
        .audit_read(move |c| {
            query::bounded_page(
                c,
                &filters,
                limit,
                cursor,
                crate::http::admin::MAX_PAGE_BYTES,
            )
        })
        .await;
    let (mut items, more) = match read {
        Ok(page) => page,
        Err(e) => {
            let e = crate::http::admin::audit_query_failed(e, state.store.audit_budget());
            let body = format!("{form}{}", error(&e.description));
            return page_response(
                HttpResponse::ServiceUnavailable(),
                "Exchanges",
                &body,
                Some(&viewer),
            );
        }
    };
    let next = if more {
        items.truncate(limit as usize);
        items.last().map(|last| {
            let mut pairs: Vec<(String, String)> = asked
                .iter()
                .filter(|(k, _)| k != "cursor")
                .cloned()
                .collect();
            pairs.push(("cursor".into(), Cursor::after(last).encode()));
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        })
    } else {
        None
    };
    let pager = next.map_or_else(
        || r#"<p class="pager">No more records.</p>"#.to_string(),
        |q| {
            format!(
                r#"<p class="pager"><a href="/console/exchanges?{}">Older records</a></p>"#,
                esc(&q)
            )
        },
    );
    let exported: Vec<&(String, String)> = asked
        .iter()
        .filter(|(k, _)| k != "cursor" && k != "limit")
        .collect();
    let exported = serde_urlencoded::to_string(&exported).unwrap_or_default();
    let exports = format!(
        r#"<p class="exports">Export this search: <a href="/console/exchanges.csv?{q}">CSV</a> · <a href="/console/exchanges.jsonl?{q}">JSON lines</a></p>"#,
        q = esc(&exported)
    );
    let body = format!("{form}{exports}{}{pager}", table(&items));
    page_response(HttpResponse::Ok(), "Exchanges", &body, Some(&viewer))
}

/// The search's parameters, those left empty in the form (no filter) left out.
fn asked_filters(query: &str) -> Result<Vec<(String, String)>, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .map(|pairs| pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect())
        .map_err(|_| "the search is not a form's encoding".to_string())
}

/// The audit query a search's URL asks for, as the admin API reads it, 50 records a page
/// unless it says otherwise.
pub fn filters_of(query: &str) -> Result<(query::Filters, i64, Option<Cursor>), String> {
    let mut pairs = asked_filters(query)?;
    if !pairs.iter().any(|(k, _)| k == "limit") {
        pairs.push(("limit".into(), PAGE.to_string()));
    }
    let query = serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())?;
    crate::http::admin::parse_exchanges_query(&query).map_err(|e| e.description)
}

fn filter_form(asked: &[(String, String)]) -> String {
    let value = |name: &str| {
        asked
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let fields: String = FILTERS
        .iter()
        .map(|(name, label)| {
            format!(
                r#"<label>{label}<input name="{name}" value="{}"></label>"#,
                esc(value(name))
            )
        })
        .collect();
    format!(
        r#"<form method="get" action="/console/exchanges" class="filters">{fields}<button>Search</button></form>"#
    )
}

fn table(items: &[ExchangeRecord]) -> String {
    if items.is_empty() {
        return "<p>No record matches.</p>".into();
    }
    let rows: String = items
        .iter()
        .map(|r| {
            let outcome = r.outcome.as_str();
            format!(
                r#"<tr><td><a href="/console/exchanges/{id}">{time}</a></td><td class="{outcome}">{outcome}</td><td>{error}</td><td>{client}</td><td>{issuer}</td><td>{subject}</td><td>{audiences}</td><td>{scopes}</td><td>{rule}</td><td><code>{jti}</code></td></tr>"#,
                id = url_value(&r.id),
                time = esc(&crate::clock::format_micros(r.time_us)),
                error = esc(r.error.as_deref().unwrap_or("")),
                client = esc(r.client_id.as_deref().unwrap_or("")),
                issuer = esc(r.subject_issuer.as_deref().unwrap_or("")),
                subject = esc(r.subject.as_deref().unwrap_or("")),
                audiences = esc(&if r.granted_audiences.is_empty() {
                    &r.requested_audiences
                } else {
                    &r.granted_audiences
                }
                .join(" ")),
                scopes = esc(&r.granted_scopes.join(" ")),
                rule = esc(r.rule.as_deref().unwrap_or("")),
                jti = esc(r.token_jti.as_deref().unwrap_or("")),
            )
        })
        .collect();
    format!(
        "<table><thead><tr><th>Time</th><th>Outcome</th><th>Error</th><th>Client</th><th>Issuer</th>\
         <th>Subject</th><th>Audiences</th><th>Scopes</th><th>Rule</th><th>Token jti</th></tr></thead>\
         <tbody>{rows}</tbody></table>"
    )
}

pub async fn detail(
    SignedIn(session): SignedIn,
    id: web::Path<String>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    let id = id.into_inner();
    let found = state.store.audit_read(move |c| query::one(c, &id)).await;
    let record = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return page_response(
                HttpResponse::NotFound(),
                "Record not found",
                "<p>No record has this id.</p>",
                Some(&viewer),
            );
        }
        Err(e) => {
            let e = crate::http::admin::audit_query_failed(e, state.store.audit_budget());
            return failed(
                HttpResponse::ServiceUnavailable(),
                "Record",
                &e.description,
                Some(&viewer),
            );
        }
    };
    let revoke = match (&record.token_jti, record.revoked_at, session.role) {
        (Some(_), None, super::session::Role::Operator) => format!(
            r#"<form method="post" action="/console/exchanges/{}/revoke" class="revoke"><input type="hidden" name="csrf" value="{}"><button>Revoke this token and every token minted from it</button></form>"#,
            esc(&url_value(&record.id)),
            esc(&session.csrf(&key))
        ),
        _ => String::new(),
    };
    // Read on its own: a lineage too costly for the query budget leaves the record, and its
    // revoke button, on the page.
    let local = state.policy.load().local_issuers.clone();
    let of = record.clone();
    let lineage = state
        .store
        .audit_read(move |c| crate::audit::lineage::of(c, &of, &local))
        .await;
    let tree = match lineage {
        Ok(lineage) => lineage_tree(&record, &lineage),
        Err(e) => {
            let e = crate::http::admin::audit_query_failed(e, state.store.audit_budget());
            format!(
                r#"<h2>Lineage</h2><p class="error">The lineage could not be read: {}</p>"#,
                esc(&e.description)
            )
        }
    };
    let body = format!("{}{revoke}{}{tree}", fields(&record), try_link(&record),);
    page_response(HttpResponse::Ok(), "Record", &body, Some(&viewer))
}

/// Every field of the record, in the order of SPEC §6, with links to the searches a field
/// leads to: the tokens minted from its subject token (siblings) and from its own token
/// (children), the record that minted its subject token (parent), the rule, client and txn.
fn fields(record: &ExchangeRecord) -> String {
    let Ok(Value::Object(map)) = serde_json::to_value(record) else {
        return String::new();
    };
    let rows: String = map
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Array(list) => list
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            let link = match name.as_str() {
                "subject_jti" => Some("subject_jti"),
                "token_jti" => Some("subject_jti"),
                "rule" => Some("rule"),
                "client_id" => Some("client"),
                "txn" => Some("txn"),
                _ => None,
            };
            let mut shown = match link {
                Some(filter) if !text.is_empty() => format!(
                    r#"<a href="/console/exchanges?{filter}={}">{}</a>"#,
                    esc(&url_value(&text)),
                    esc(&text)
                ),
                _ => esc(&text),
            };
            // Upward in the lineage: the record that minted the subject token, when this
            // server minted it.
            if name == "subject_jti" && !text.is_empty() {
                shown.push_str(&format!(
                    r#" · <a href="/console/exchanges?jti={}">where it came from</a>"#,
                    esc(&url_value(&text))
                ));
            }
            format!("<tr><th>{}</th><td>{shown}</td></tr>", esc(name))
        })
        .collect();
    format!("<table class=\"record\"><tbody>{rows}</tbody></table>")
}

/// The lineage as nested lists: the ancestors from the oldest down to this record, and under
/// it every token minted from its token. Each node links to its record; revoked ones are marked.
fn lineage_tree(record: &ExchangeRecord, lineage: &crate::audit::lineage::Lineage) -> String {
    if lineage.ancestors.is_empty() && lineage.descendants.is_empty() {
        return "<h2>Lineage</h2><p>Nothing this server recorded was minted from this record's \
                token, nor minted the token it was exchanged from.</p>"
            .into();
    }
    let mut inner = format!(
        r#"<li class="this">{}{}</li>"#,
        node_label(record, false, true),
        branches(&lineage.descendants)
    );
    for ancestor in &lineage.ancestors {
        inner = format!(
            "<li>{}<ul>{inner}</ul></li>",
            node_label(ancestor, false, false)
        );
    }
    let cut = if lineage.cut {
        format!(
            r#"<p class="note">Only the nearest {} records are shown.</p>"#,
            crate::audit::lineage::MAX_NODES
        )
    } else {
        String::new()
    };
    format!(r#"<h2>Lineage</h2><ul class="tree" id="lineage">{inner}</ul>{cut}"#)
}

fn branches(nodes: &[crate::audit::lineage::Node]) -> String {
    if nodes.is_empty() {
        return String::new();
    }
    let items: String = nodes
        .iter()
        .map(|n| {
            format!(
                "<li>{}{}</li>",
                node_label(&n.record, n.as_actor, false),
                branches(&n.children)
            )
        })
        .collect();
    format!("<ul>{items}</ul>")
}

fn node_label(record: &ExchangeRecord, as_actor: bool, this: bool) -> String {
    let audiences = if record.granted_audiences.is_empty() {
        &record.requested_audiences
    } else {
        &record.granted_audiences
    };
    let time = esc(&crate::clock::format_micros(record.time_us));
    let time = if this {
        format!("<strong>{time} (this record)</strong>")
    } else {
        format!(
            r#"<a href="/console/exchanges/{}">{time}</a>"#,
            esc(&url_value(&record.id))
        )
    };
    format!(
        "{time} {kind} for {client} → {audiences}{actor}{revoked}",
        kind = esc(&record.token_type),
        client = esc(record.client_id.as_deref().unwrap_or("?")),
        audiences = esc(&audiences.join(" ")),
        actor = if as_actor { " (as actor token)" } else { "" },
        revoked = if record.revoked_at.is_some() {
            r#" <span class="revoked">revoked</span>"#
        } else {
            ""
        },
    )
}

/// A denied request, to try again against the rules with what its record holds (the subject's
/// other claims are not recorded: the form shows them to fill in).
fn try_link(record: &ExchangeRecord) -> String {
    if record.outcome != crate::audit::record::Outcome::Denied || record.client_id.is_none() {
        return String::new();
    }
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let mut put = |k: &'static str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            pairs.push((k, v));
        }
    };
    put("client", record.client_id.clone());
    put("issuer", record.subject_issuer.clone());
    put("sub", record.subject.clone());
    put("requested_token_type", Some(record.token_type.clone()));
    put("audience", Some(record.requested_audiences.join(" ")));
    put("resource", Some(record.requested_resources.join(" ")));
    put("scope", Some(record.requested_scopes.join(" ")));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!(
        r#"<p><a class="button" id="try-this" href="/console/try?{}">Try this request against the rules</a></p>"#,
        esc(&query)
    )
}
