//! The console's HTML: escaping and the page around every screen. No script, no inline style.

use actix_web::{HttpResponse, HttpResponseBuilder};

use super::session::{Session, SessionKey};

/// Text made safe for HTML content and attribute values (double-quoted).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters, and those that reorder or hide what a reader sees.
            c if crate::text::is_hiding(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Lines of text made safe for a `<pre>`: as `esc`, keeping the line breaks.
pub fn esc_lines(text: &str) -> String {
    text.lines().map(esc).collect::<Vec<_>>().join("\n")
}

/// A query-string value, percent-encoded.
pub fn url_value(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)])
        .map(|s| s["v=".len()..].to_string())
        .unwrap_or_default()
}

/// The signed-in person a page is for: their session, to renew, and its CSRF token.
pub struct Viewer<'a> {
    pub session: &'a Session,
    pub key: &'a SessionKey,
}

/// A whole page: the title, the navigation (with sign-out) for a viewer, then `body`.
pub fn page_response(
    builder: HttpResponseBuilder,
    title: &str,
    body: &str,
    viewer: Option<&Viewer<'_>>,
) -> HttpResponse {
    let nav = match viewer {
        None => String::new(),
        Some(v) => format!(
            r#"<nav><a href="/console/overview">Overview</a> <a href="/console/exchanges">Exchanges</a> <a href="/console/rules">Trust configuration</a> <a href="/console/try">Try a request</a> <a href="/console/verify">Audit chain</a> <a href="/console/activity">Console activity</a>
<span class="who">{who} ({role})</span>
<form method="post" action="/console/sign-out"><input type="hidden" name="csrf" value="{csrf}"><button>Sign out</button></form></nav>"#,
            who = esc(&v.session.who),
            role = v.session.role.as_str(),
            csrf = esc(&v.session.csrf(v.key)),
        ),
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Tessera</title><link rel="stylesheet" href="/console/console.css"></head>
<body><header><span class="brand">Tessera</span>{nav}</header><main><h1>{title}</h1>
{body}</main></body></html>"#,
        title = esc(title),
    );
    let mut builder = super::secured(builder);
    if let Some(v) = viewer {
        builder.insert_header((actix_web::http::header::SET_COOKIE, v.session.cookie(v.key)));
    }
    builder.content_type("text/html; charset=utf-8").body(html)
}

/// The ways to sign in: with the identity provider (named by its issuer id), with the admin
/// token (the form token given), or both.
pub fn sign_in(provider: Option<&str>, form_token: Option<&str>, refused: Option<&str>) -> String {
    let mut out = refused.map(error).unwrap_or_default();
    if let Some(provider) = provider {
        out.push_str(&format!(
            r#"<p><a class="button" id="sign-in-oidc" href="/console/sign-in/oidc">Sign in with {}</a></p>"#,
            esc(provider)
        ));
    }
    if let Some(token) = form_token {
        out.push_str(&format!(
            r#"<form method="post" action="/console/sign-in" class="sign-in">
<input type="hidden" name="form_token" value="{token}">
<label>Admin token <input type="password" name="admin_token" autocomplete="off" required></label>
<button>Sign in</button></form>"#,
            token = esc(token),
        ));
    }
    out
}

/// A paragraph saying what went wrong.
pub fn error(why: &str) -> String {
    format!(r#"<p class="error">{}</p>"#, esc(why))
}

/// A page that says only what went wrong.
pub fn failed(
    builder: HttpResponseBuilder,
    title: &str,
    why: &str,
    viewer: Option<&Viewer<'_>>,
) -> HttpResponse {
    page_response(builder, title, &error(why), viewer)
}

pub fn forbidden(why: &str) -> HttpResponse {
    failed(HttpResponse::Forbidden(), "Forbidden", why, None)
}

/// No random bytes for a session, a form or a sign-in: nothing that needs them is made.
pub fn no_randomness() -> HttpResponse {
    failed(
        HttpResponse::ServiceUnavailable(),
        "Unavailable",
        "the system's random generator failed; try again",
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_record_holds_is_shown_as_text() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(esc("a\u{7}b\nc"), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(esc("evil\u{202E}gpj.exe"), "evil\u{FFFD}gpj.exe");
        assert_eq!(url_value("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
