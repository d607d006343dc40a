//! Export of a search, as CSV (RFC 4180, with the formula guard of `tessera audit`) or JSON
//! lines: streamed a page at a time, each page its own bounded audit query, so an export of
//! millions of records holds one page in memory.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

use super::html::{Viewer, failed};
use super::{SessionKey, SignedIn};
use crate::audit::format::{Format, Writer};
use crate::audit::query::{self, Cursor, Filters};
use crate::state::AppState;

/// Records a page of an export reads.
const PAGE: i64 = 500;
/// How long a page of an export waits for its turn among the audit queries, and how often it
/// asks again meanwhile.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

pub async fn csv(
    signed_in: SignedIn,
    req: HttpRequest,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    export(signed_in, req, key, state, Format::Csv).await
}

pub async fn jsonl(
    signed_in: SignedIn,
    req: HttpRequest,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    export(signed_in, req, key, state, Format::Json).await
}

async fn export(
    SignedIn(session): SignedIn,
    req: HttpRequest,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
    format: Format,
) -> HttpResponse {
    let filters = match super::audit::filters_of(req.query_string()) {
        Ok((filters, _, _)) => filters,
        Err(why) => {
            let viewer = Viewer {
                session: &session,
                key: &key,
            };
            return failed(HttpResponse::BadRequest(), "Export", &why, Some(&viewer));
        }
    };
    tracing::info!(who = %session.who, "console export");
    let (content_type, file) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "exchanges.csv"),
        _ => ("application/x-ndjson", "exchanges.jsonl"),
    };
    let stream = futures_util::stream::unfold(
        Some(Export::new(state.into_inner(), filters, format)),
        |export| async move {
            let mut export = export?;
            match export.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(export))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        },
    );
    super::secured(HttpResponse::Ok())
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        ))
        .streaming(stream)
}

struct Export {
    state: Arc<AppState>,
    filters: Filters,
    cursor: Option<Cursor>,
    done: bool,
    /// Made with the first chunk, which starts with its header.
    writer: Option<Writer<Vec<u8>>>,
    format: Format,
}

impl Export {
    fn new(state: Arc<AppState>, filters: Filters, format: Format) -> Self {
        Self {
            state,
            filters,
            cursor: None,
            done: false,
            writer: None,
            format,
        }
    }

    /// The next page of records. An export is one long read: it takes its turn among the audit
    /// queries page by page, waiting while others run (up to a minute a page) rather than
    /// stopping midway.
    async fn page(
        state: &AppState,
        filters: &Filters,
        cursor: &Option<Cursor>,
    ) -> Result<(Vec<crate::audit::ExchangeRecord>, bool), std::io::Error> {
        let mut waited = std::time::Duration::ZERO;
        loop {
            let (filters, cursor) = (filters.clone(), cursor.clone());
            let read = state
                .store
                .audit_read(move |c| {
                    query::bounded_page(
                        c,
                        &filters,
                        PAGE,
                        cursor,
                        crate::http::admin::MAX_PAGE_BYTES,
                    )
                })
                .await;
            match read {
                Err(crate::store::Error::AuditBusy) if waited < BUSY_WAIT => {
                    tokio::time::sleep(BUSY_PAUSE).await;
                    waited += BUSY_PAUSE;
                }
                Err(e) => {
                    tracing::warn!(error = %crate::error::chain(&e), "console export stopped");
                    return Err(std::io::Error::other(
                        "the export stopped: the audit query failed",
                    ));
                }
                Ok(page) => return Ok(page),
            }
        }
    }

    /// The next page, written: the header first; `None` once every record is out.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        if self.done {
            return Ok(None);
        }
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self.writer.insert(Writer::new(Vec::new(), self.format)?),
        };
        let (mut page, more) = Self::page(&self.state, &self.filters, &self.cursor).await?;
        if more {
            page.truncate(PAGE as usize);
        }
        for record in &page {
            writer.write(record)?;
        }
        let chunk = Bytes::from(writer.take_written());
        self.done = !more;
        self.cursor = page.last().map(Cursor::after);
        Ok(Some(chunk))
    }
}
