//! The overview (SPEC §11): exchanges per minute, granted and denied, over the last hour and
//! the last day, as charts drawn by the server (inline SVG, no script), and the largest denial
//! reasons, clients and audiences. Read from the per-minute counts (`audit::tallies`), so its
//! cost is a day of minutes whatever the number of records.

use actix_web::{HttpResponse, web};

use super::html::{Viewer, esc, failed, page_response, url_value};
use super::{SessionKey, SignedIn};
use crate::audit::tallies::{self, Overview};
use crate::state::AppState;

const TOP: usize = 10;

#[derive(serde::Deserialize)]
pub struct Window {
    window: Option<String>,
}

pub async fn page(
    SignedIn(session): SignedIn,
    window: web::Query<Window>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    let now_minute = state.clock.now().micros().div_euclid(60_000_000);
    let day = window.window.as_deref() == Some("day");
    let read = state
        .store
        .audit_read(move |c| tallies::overview(c, now_minute, TOP))
        .await;
    let (hour, whole_day) = match read {
        Ok(read) => read,
        Err(e) => {
            let e = crate::http::admin::audit_query_failed(e, state.store.audit_budget());
            return failed(
                HttpResponse::ServiceUnavailable(),
                "Overview",
                &e.description,
                Some(&viewer),
            );
        }
    };
    let hour_chart = chart(&buckets(&hour, now_minute - 59, 60, 1));
    let day_chart = chart(&buckets(&whole_day, now_minute - 1439, 96, 15));
    let (tables_of, other, other_name) = if day {
        (&whole_day, "hour", "the last hour")
    } else {
        (&hour, "day", "the last day")
    };
    let span = if day { "the last day" } else { "the last hour" };
    let body = format!(
        r#"<section class="overview">
<h2>Last hour</h2><p class="totals">{hour_totals}</p>{hour_chart}
<h2>Last day</h2><p class="totals">{day_totals}</p>{day_chart}
<h2>Over {span} <small>(<a href="/console/overview?window={other}">{other_name}</a>)</small></h2>
<div class="tops">{errors}{clients}{audiences}</div></section>"#,
        hour_totals = totals(&hour),
        day_totals = totals(&whole_day),
        errors = top_table(
            "Denial reasons",
            &tables_of.top_errors,
            "error",
            "outcome=denied&"
        ),
        clients = top_table("Clients", &tables_of.top_clients, "client", ""),
        audiences = top_table(
            "Audiences granted",
            &tables_of.top_audiences,
            "audience",
            "outcome=granted&"
        ),
    );
    page_response(HttpResponse::Ok(), "Overview", &body, Some(&viewer))
}

fn totals(o: &Overview) -> String {
    let cut = if o.cut {
        " (too many distinct clients, audiences and errors to weigh them all: the largest leave the oldest out)"
    } else {
        ""
    };
    let (granted, denied) = o
        .per_minute
        .iter()
        .fold((0, 0), |(g, d), (_, mg, md)| (g + mg, d + md));
    format!(
        r#"<span class="granted">{granted} granted</span> · <span class="denied">{denied} denied</span>{cut}"#
    )
}

/// `count` buckets of `width` minutes from `from_minute`: (first minute, granted, denied).
fn buckets(o: &Overview, from_minute: i64, count: usize, width: i64) -> Vec<(i64, i64, i64)> {
    let mut out: Vec<(i64, i64, i64)> = (0..count as i64)
        .map(|i| (from_minute + i * width, 0, 0))
        .collect();
    for &(minute, granted, denied) in &o.per_minute {
        let i = (minute - from_minute).div_euclid(width);
        if let Some(b) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            b.1 += granted;
            b.2 += denied;
        }
    }
    out
}

/// Stacked bars, granted below denied, each with its numbers as a tooltip (`<title>`).
fn chart(buckets: &[(i64, i64, i64)]) -> String {
    const W: f64 = 960.0;
    const H: f64 = 160.0;
    let peak = buckets.iter().map(|b| b.1 + b.2).max().unwrap_or(0).max(1) as f64;
    let bar = W / buckets.len().max(1) as f64;
    let bars: String = buckets
        .iter()
        .enumerate()
        .map(|(i, &(minute, granted, denied))| {
            let x = i as f64 * bar;
            let hg = granted as f64 / peak * H;
            let hd = denied as f64 / peak * H;
            let time = crate::clock::format_micros(minute * 60_000_000);
            format!(
                r#"<g><title>{time}: {granted} granted, {denied} denied</title><rect class="bar-granted" x="{x:.1}" y="{yg:.1}" width="{w:.1}" height="{hg:.1}"/><rect class="bar-denied" x="{x:.1}" y="{yd:.1}" width="{w:.1}" height="{hd:.1}"/></g>"#,
                time = esc(&time),
                yg = H - hg,
                yd = H - hg - hd,
                w = (bar - 1.0).max(0.5),
            )
        })
        .collect();
    let first = buckets
        .first()
        .map(|b| crate::clock::format_micros(b.0 * 60_000_000))
        .unwrap_or_default();
    format!(
        r#"<svg class="chart" viewBox="0 0 {W} {total}" role="img" aria-label="exchanges per interval, granted and denied"><text class="axis" x="0" y="12">{peak} per bar at most</text><g transform="translate(0 18)">{bars}</g><text class="axis" x="0" y="{bottom}">from {first}</text></svg>"#,
        total = H + 38.0,
        peak = peak as i64,
        bottom = H + 34.0,
        first = esc(&first),
    )
}

fn top_table(title: &str, rows: &[(String, i64)], filter: &str, extra: &str) -> String {
    let body: String = if rows.is_empty() {
        "<tr><td colspan=\"2\">none</td></tr>".into()
    } else {
        rows.iter()
            .map(|(name, n)| {
                let shown = if name.is_empty() {
                    "<em>(not attributed)</em>".to_string()
                } else {
                    format!(
                        r#"<a href="/console/exchanges?{extra}{filter}={}">{}</a>"#,
                        esc(&url_value(name)),
                        esc(name)
                    )
                };
                format!("<tr><td>{shown}</td><td>{n}</td></tr>")
            })
            .collect()
    };
    format!(
        "<table class=\"top\"><thead><tr><th>{}</th><th>Exchanges</th></tr></thead><tbody>{body}</tbody></table>",
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_fall_into_their_buckets_and_the_rest_is_zero() {
        let o = Overview {
            per_minute: vec![
                (100, 3, 1),
                (114, 2, 0),
                (115, 5, 5),
                (99, 9, 9),
                (200, 1, 1),
            ],
            ..Default::default()
        };
        let b = buckets(&o, 100, 2, 15);
        assert_eq!(b, vec![(100, 5, 1), (115, 5, 5)]);
        let svg = chart(&b);
        assert!(
            svg.starts_with("<svg") && svg.contains("10 per bar at most"),
            "{svg}"
        );
        assert!(!svg.contains("style="), "no inline style under the CSP");
    }
}
