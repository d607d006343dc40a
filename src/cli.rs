//! The command line (SPEC §1). Each command reports failure as one sentence on stderr and a
//! non-zero exit status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Parser, Subcommand};
use jsonwebtoken::Algorithm;

use crate::audit::ExchangeRecord;
use crate::audit::format::{Format, Writer};
use crate::audit::query::{self, Cursor, Filters, parse_time_bound};
use crate::config::{self, Config, KeySource, StorageUrl};
use crate::keys::{SigningKeys, generate_pkcs8_pem, public_jwk_of};
use crate::startup::Application;
use crate::store::{Store, budget};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "OAuth 2.0 Token Exchange (RFC 8693) service"
)]
struct Cli {
    /// The configuration file [default: $TESSERA_CONFIG, else tessera.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: apply migrations, load keys, fetch issuers' keys, listen
    Serve,
    /// Validate the configuration without starting, and summarise it
    Check,
    /// Dry run of an exchange: which rule applies, why the others do not, what would be minted
    Explain(Box<ExplainArgs>),
    /// Run rule test cases against the configured rules (no signatures, no server)
    Test {
        /// The cases file (TOML)
        cases: PathBuf,
    },
    /// Query the exchange records, newest first
    Audit(Box<AuditArgs>),
    /// Manage signing keys
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print a new random client secret and the secret_sha256 to configure
    Secret,
    /// Apply database migrations and exit
    Migrate,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new private signing key (PKCS#8 PEM) and print its public JWK
    Generate {
        /// ES256, EdDSA, RS256 or PS256 (in any case)
        #[arg(long)]
        alg: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct ExplainArgs {
    #[arg(long)]
    client: String,
    /// A file holding the subject token
    #[arg(long, value_name = "FILE", required_unless_present = "assertion")]
    subject_token: Option<PathBuf>,
    /// A file holding a grant from another trust domain: a jwt-bearer request (with --resource
    /// and --scope) instead of a token exchange
    #[arg(long, value_name = "FILE", conflicts_with_all = ["subject_token", "actor_token", "audience", "requested_token_type"])]
    assertion: Option<PathBuf>,
    /// Its type, as subject_token_type names it: the URI or its last part (jwt for workload tokens)
    #[arg(long, value_name = "TYPE", default_value = "access_token", value_parser = crate::oauth::TokenType::from_arg)]
    subject_token_type: crate::oauth::TokenType,
    /// A file holding the actor token
    #[arg(long, value_name = "FILE")]
    actor_token: Option<PathBuf>,
    /// Its type, as actor_token_type names it
    #[arg(long, value_name = "TYPE", default_value = "access_token", value_parser = crate::oauth::TokenType::from_arg)]
    actor_token_type: crate::oauth::TokenType,
    #[arg(long)]
    audience: Vec<String>,
    #[arg(long)]
    resource: Vec<crate::oauth::Resource>,
    /// Space-separated, as the scope parameter
    #[arg(long)]
    scope: Option<String>,
    /// What is asked for, as requested_token_type names it: access_token (the default), jwt,
    /// txn_token or id-jag
    #[arg(long, value_name = "TYPE", value_parser = crate::oauth::TokenType::from_arg)]
    requested_token_type: Option<crate::oauth::TokenType>,
    /// A file holding a Txn-Token request's request_context (a JSON object)
    #[arg(long, value_name = "FILE")]
    request_context: Option<PathBuf>,
    /// A file holding a Txn-Token request's request_details (a JSON object)
    #[arg(long, value_name = "FILE")]
    request_details: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check the hash chain of the audit records; report the first broken record
    Verify,
}

/// Filters and `verify` are refused together by `audit` itself: clap's own conflict would also
/// refuse the global `--config` (SPEC §1 takes it anywhere on the command line).
#[derive(Args)]
struct AuditArgs {
    #[command(subcommand)]
    action: Option<AuditAction>,
    #[arg(long)]
    subject: Option<String>,
    #[arg(long)]
    client: Option<String>,
    /// The subject token's issuer id
    #[arg(long)]
    issuer: Option<String>,
    #[arg(long)]
    audience: Option<String>,
    #[arg(long)]
    rule: Option<String>,
    /// granted or denied
    #[arg(long)]
    outcome: Option<String>,
    /// An OAuth error code, e.g. invalid_target
    #[arg(long)]
    error: Option<String>,
    /// A minted token's jti
    #[arg(long)]
    jti: Option<String>,
    /// Every token minted from this subject token
    #[arg(long)]
    subject_jti: Option<String>,
    /// The acting party of a delegation (the actor token's sub)
    #[arg(long)]
    actor: Option<String>,
    /// The kind of token asked for: access_token, jwt, txn_token, id-jag
    #[arg(long)]
    token_type: Option<String>,
    /// A transaction: its Txn-Tokens, replacements included
    #[arg(long)]
    txn: Option<String>,
    /// The grant type: token-exchange or jwt-bearer
    #[arg(long)]
    grant_type: Option<String>,
    /// The kind of grant for another trust domain issued or presented: authorization_grant or
    /// id_jag
    #[arg(long)]
    grant_kind: Option<String>,
    /// RFC 3339 time, or a duration back from now such as 1h
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[arg(long, default_value_t = 100)]
    limit: u64,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config_path = cli.config.clone().unwrap_or_else(config::default_path);
    // `serve` sets logging up once its configuration says where spans go.
    if !matches!(cli.command, Command::Serve) {
        crate::telemetry::init("warn");
    }
    crate::install_crypto_provider();
    let result = match cli.command {
        Command::Serve => serve(&config_path),
        Command::Check => check(&config_path),
        Command::Explain(args) => explain(&config_path, *args),
        Command::Test { cases } => test_cases(&config_path, &cases),
        Command::Audit(args) => audit(&config_path, *args),
        Command::Keys {
            command: KeysCommand::Generate { alg, out },
        } => generate_key(&alg, &out),
        Command::Secret => secret(),
        Command::Migrate => migrate(&config_path),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tessera: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> Result<Config, String> {
    config::load(path).map_err(|e| e.to_string())
}

fn serve(path: &Path) -> Result<(), String> {
    let config = load(path)?;
    let _exporting = crate::telemetry::init_with("info", &config.telemetry)?;
    crate::state::check_files(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let app = Application::build(config).await?;
        app.run_until_stopped()
            .await
            .map_err(|e| format!("the server failed: {e}"))
    })
}

fn check(path: &Path) -> Result<(), String> {
    let config = load(path)?;
    let keys = crate::state::check_files(&config)?;
    let mut out = std::io::stdout().lock();
    let _ = print_summary(&mut out, &config, &keys);
    for warning in crate::rules::lint::lint(&config) {
        let _ = writeln!(out, "warning: {warning}");
    }
    Ok(())
}

fn print_summary(out: &mut impl Write, config: &Config, keys: &SigningKeys) -> std::io::Result<()> {
    fn names<T: std::fmt::Display>(list: &[T]) -> String {
        if list.is_empty() {
            return "-".to_string();
        }
        list.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
    }
    writeln!(out, "{}: configuration is valid", config.file.display())?;
    writeln!(
        out,
        "server: {} on {}",
        config.server.issuer, config.server.listen
    )?;
    if let Some(admin) = &config.admin {
        writeln!(out, "admin: {}", admin.listen)?;
    }
    writeln!(out, "storage: {}", config.storage.url.describe())?;
    for (i, k) in keys.iter().enumerate() {
        writeln!(
            out,
            "signing key: {} {:?}{}",
            k.kid,
            k.alg,
            if i == 0 { " (signs)" } else { "" }
        )?;
    }
    writeln!(out, "issuers ({}):", config.issuers.len())?;
    for i in &config.issuers {
        let source = match &i.keys {
            KeySource::Uri(u) => format!("jwks_uri {u}"),
            KeySource::File(f) => format!("jwks_file {}", f.display()),
            KeySource::Discovery(_) => "discovery".into(),
            KeySource::Local => "this server's signing keys".into(),
            KeySource::None => "no keys".into(),
        };
        let algs: Vec<String> = i.algorithms.iter().map(|a| format!("{a:?}")).collect();
        writeln!(
            out,
            "  {}  {}  ({source}; {})",
            i.id,
            i.issuer,
            algs.join(" ")
        )?;
    }
    writeln!(out, "clients ({}):", config.clients.len())?;
    for c in &config.clients {
        writeln!(out, "  {}", c.id)?;
    }
    writeln!(out, "rules ({}):", config.rules.len())?;
    for r in &config.rules {
        writeln!(
            out,
            "  {}: clients {}; issuers {}; subjects {}; audiences {}; resources {}; scopes {}{}",
            r.name,
            names(&r.clients),
            names(&r.issuers),
            if r.subjects.is_empty() {
                "any".to_string()
            } else {
                names(&r.subjects)
            },
            names(&r.audiences),
            names(&r.resources),
            names(&r.scopes.iter().collect::<Vec<_>>()),
            if r.condition.is_some() {
                "; with a condition"
            } else {
                ""
            }
        )?;
        if r.mints == crate::config::Mints::TxnToken {
            let built: Vec<String> = [("tctx", &r.tctx), ("rctx", &r.rctx)]
                .iter()
                .flat_map(|(claim, entries)| {
                    entries.iter().map(move |(n, _)| format!("{claim}.{n}"))
                })
                .collect();
            writeln!(
                out,
                "    mints Txn-Tokens for trust domain {}; builds {}",
                config
                    .transaction_tokens
                    .as_ref()
                    .map_or("-", |t| t.trust_domain.as_str()),
                if built.is_empty() {
                    "nothing".to_string()
                } else {
                    built.join(", ")
                }
            )?;
        }
        if r.mints.is_grant() {
            writeln!(
                out,
                "    issues {} for another trust domain; sub from {}{}",
                if r.mints == crate::config::Mints::IdJag {
                    "ID-JAGs (requested_token_type id-jag)"
                } else {
                    "JWT authorization grants (requested_token_type jwt)"
                },
                r.subject_claim
                    .as_deref()
                    .map_or("the subject's sub".to_string(), |c| format!(
                        "its {c} claim"
                    )),
                r.audience_client_id
                    .as_deref()
                    .map_or(String::new(), |c| format!("; client_id {c}"))
            )?;
        }
    }
    Ok(())
}

fn explain(path: &Path, args: ExplainArgs) -> Result<(), String> {
    let config = load(path)?;
    let read = |file: &Path| {
        std::fs::read_to_string(file)
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("{}: {e}", file.display()))
    };
    let request = crate::explain::Request {
        client: args.client,
        assertion: args.assertion.as_deref().map(read).transpose()?,
        subject_token: args
            .subject_token
            .as_deref()
            .map(read)
            .transpose()?
            .unwrap_or_default(),
        subject_token_type: args.subject_token_type,
        actor_token: args
            .actor_token
            .as_deref()
            .map(read)
            .transpose()?
            .map(|t| (t, args.actor_token_type)),
        audiences: args.audience,
        resources: args.resource,
        scopes: args
            .scope
            .as_deref()
            .map(crate::oauth::Scopes::parse)
            .transpose()
            .map_err(|e| format!("--scope: \"{}\" is not a scope-token", e.0))?
            .filter(|s| !s.is_empty()),
        requested_token_type: args
            .requested_token_type
            .unwrap_or(crate::oauth::TokenType::AccessToken),
        request_context: args.request_context.as_deref().map(read).transpose()?,
        request_details: args.request_details.as_deref().map(read).transpose()?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut out = std::io::stdout().lock();
    runtime.block_on(crate::explain::explain(&config, &request, &mut out))
}

fn test_cases(path: &Path, cases: &Path) -> Result<(), String> {
    let config = load(path)?;
    let text = std::fs::read_to_string(cases).map_err(|e| format!("{}: {e}", cases.display()))?;
    let file =
        crate::rules::cases::parse(&text).map_err(|e| format!("{}: {e}", cases.display()))?;
    let now = crate::clock::now().secs();
    let rules = crate::rules::RuleSet::new(config.rules.clone());
    let (mut passed, mut failed) = (0, 0);
    for case in &file.cases {
        match crate::rules::cases::run(&config, &rules, case, now) {
            Ok(()) => {
                passed += 1;
                println!("ok      {}", case.name);
            }
            Err(why) => {
                failed += 1;
                println!("FAILED  {}: {why}", case.name);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        return Err(format!(
            "{failed} of {} rule test case(s) failed",
            file.cases.len()
        ));
    }
    Ok(())
}

/// Progress of a long command on a terminal: one line on stderr, rewritten at most a few times
/// a second, and nothing at all when stderr is not a terminal (a log, a pipe, a CI job).
struct Progress {
    what: &'static str,
    shown: Option<std::time::Instant>,
    on: bool,
}

impl Progress {
    fn new(what: &'static str) -> Self {
        use std::io::IsTerminal;
        Self {
            what,
            shown: None,
            on: std::io::stderr().is_terminal(),
        }
    }

    /// Says where the command is; `n` so far.
    fn at(&mut self, n: u64) {
        if self.on
            && self
                .shown
                .is_none_or(|t| t.elapsed() > std::time::Duration::from_millis(200))
        {
            eprint!("\r{}: {n}…", self.what);
            self.shown = Some(std::time::Instant::now());
        }
    }

    /// Clears the line.
    fn done(&self) {
        if self.on && self.shown.is_some() {
            eprint!("\r\x1b[K");
        }
    }

    /// A step that shows no count (a migration): said on a terminal before it starts.
    fn step(&self, what: &str) {
        if self.on {
            eprintln!("{what}…");
        }
    }
}

fn migrate(path: &Path) -> Result<(), String> {
    let config = load(path)?;
    let store =
        Store::open(&config.storage.url)?.with_audit_budget(config.storage.audit_query_budget);
    let progress = Progress::new("migrations");
    let pending = store.pending_migrations()?;
    if !pending.is_empty() {
        progress.step(&format!(
            "applying {} migration(s): {} (one that fills a new table from millions of records \
             takes a minute or so)",
            pending.len(),
            pending.join(", ")
        ));
    }
    let applied = store.migrate()?;
    println!("{applied} migration(s) applied; the schema is current");
    if !store.returns_free_space()? {
        progress.step("rewriting the database file once (as long as copying it)");
    }
    if store.convert_to_incremental_vacuum()? {
        println!(
            "the database file was rewritten once so that space freed by retention returns to \
             the file system"
        );
    }
    Ok(())
}

/// The store of an existing database: the audit commands never create one.
fn existing_store(config: &Config) -> Result<Store, String> {
    if let StorageUrl::Sqlite(db) = &config.storage.url
        && !db.is_file()
    {
        return Err(format!(
            "{}: no database yet (run `tessera migrate` or `tessera serve`)",
            db.display()
        ));
    }
    let store =
        Store::open(&config.storage.url)?.with_audit_budget(config.storage.audit_query_budget);
    let pending = store.pending_migrations()?;
    if !pending.is_empty() {
        return Err(format!(
            "the schema at {} is behind this version of Tessera ({} migration(s) not applied); \
             run `tessera migrate` first",
            store.describe(),
            pending.len()
        ));
    }
    Ok(store)
}

fn audit_verify(config: &Config) -> Result<(), String> {
    let store = existing_store(config)?;
    let mut conn = store.connect_for_audit()?;
    let mut progress = Progress::new("records checked");
    let result = crate::audit::chain::verify(&mut conn, |n| progress.at(n));
    progress.done();
    match result.map_err(|e| format!("the audit query failed: {e}"))? {
        Ok(n) => {
            println!("audit chain intact: {n} records verified");
            Ok(())
        }
        Err(broken) => Err(format!("audit chain broken at {broken}")),
    }
}

/// Records the CLI reads at once; reading them may take this many times the audit query
/// budget (an export is not an auditor's screen).
const CLI_PAGE: u64 = 100;
/// What a page's records may take in memory, about.
const CLI_PAGE_BYTES: usize = 1024 * 1024;
const CLI_BUDGET_FACTOR: u32 = 6;

fn any_filter(args: &AuditArgs) -> bool {
    [
        &args.subject,
        &args.client,
        &args.issuer,
        &args.audience,
        &args.rule,
        &args.outcome,
        &args.error,
        &args.jti,
        &args.subject_jti,
        &args.actor,
        &args.token_type,
        &args.txn,
        &args.grant_type,
        &args.grant_kind,
        &args.since,
        &args.until,
    ]
    .iter()
    .any(|v| v.is_some())
}

/// The filters `tessera audit` was given, times read as RFC 3339 or relative.
fn filters_of(args: &AuditArgs) -> Result<Filters, String> {
    let bound = |v: &Option<String>, name: &str| {
        v.as_deref()
            .map(parse_time_bound)
            .transpose()
            .map_err(|e| format!("--{name}: {e}"))
    };
    Ok(Filters {
        since: bound(&args.since, "since")?,
        until: bound(&args.until, "until")?,
        subject: args.subject.clone(),
        client: args.client.clone(),
        issuer: args.issuer.clone(),
        audience: args.audience.clone(),
        rule: args.rule.clone(),
        outcome: args.outcome.clone(),
        error: args.error.clone(),
        jti: args.jti.clone(),
        subject_jti: args.subject_jti.clone(),
        actor_jti: None,
        actor: args.actor.clone(),
        token_type: args.token_type.clone(),
        txn: args.txn.clone(),
        grant_type: args.grant_type.clone(),
        grant_kind: args.grant_kind.clone(),
    })
}

fn audit(path: &Path, args: AuditArgs) -> Result<(), String> {
    let config = load(path)?;
    if matches!(args.action, Some(AuditAction::Verify)) {
        if any_filter(&args) {
            return Err("audit verify checks every record: it takes no filters".into());
        }
        return audit_verify(&config);
    }
    let filters = filters_of(&args)?;
    filters.validate().map_err(|e| format!("--outcome: {e}"))?;
    let store = existing_store(&config)?;
    let mut conn = store.connect_for_audit()?;
    let mut writer =
        Writer::new(std::io::stdout().lock(), args.format).map_err(|e| e.to_string())?;
    let mut remaining = args.limit;
    let mut cursor: Option<Cursor> = None;
    // The first page small, until the records show their size.
    let mut page_size = CLI_PAGE / 5;
    // An export to a file or a pipe shows its progress on a terminal's stderr; records written
    // to the terminal itself need no counter beside them.
    let mut progress = Progress::new("records written");
    progress.on &= !std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut written = 0u64;
    while remaining > 0 {
        // Small pages, each its own statement under its own budget, and fewer records a page
        // when they are large: memory stays flat whatever the records hold, and no read holds
        // the database's log back for long.
        let batch = remaining.min(page_size) as i64;
        let page_budget = store.audit_budget() * CLI_BUDGET_FACTOR;
        let page = budget::within(page_budget, || {
            query::page(&mut conn, &filters, batch, cursor.as_ref())
        })
        .map_err(|e| {
            if budget::exceeded(&e.to_string()) {
                format!(
                    "the audit query ran past its budget of {} s for {CLI_PAGE} records: narrow \
                     it with --since and --until, or --subject, --client, --jti or --subject-jti",
                    page_budget.as_secs()
                )
            } else {
                format!("the audit query failed: {e}")
            }
        })?;
        for record in &page {
            if writer.write(record).is_err() {
                return Ok(()); // the reader went away (e.g. `| head`)
            }
        }
        remaining -= page.len() as u64;
        written += page.len() as u64;
        progress.at(written);
        let bytes: usize = page.iter().map(ExchangeRecord::approx_bytes).sum();
        page_size =
            (CLI_PAGE_BYTES as u64 * page.len() as u64 / bytes.max(1) as u64).clamp(1, CLI_PAGE);
        match page.last() {
            Some(last) if page.len() as i64 == batch => cursor = Some(Cursor::after(last)),
            _ => break,
        }
    }
    progress.done();
    let _ = writer.finish();
    Ok(())
}

fn generate_key(alg: &str, out: &Path) -> Result<(), String> {
    // Taken in any case (`es256`), so that a lowercase name is not "corrected" to another one.
    let alg: Algorithm = ["ES256", "EdDSA", "RS256", "PS256"]
        .iter()
        .find(|name| name.eq_ignore_ascii_case(alg))
        .and_then(|name| name.parse().ok())
        .ok_or_else(|| {
            format!("--alg {alg}: not a signing algorithm; use ES256, EdDSA, RS256 or PS256")
        })?;
    let pem = generate_pkcs8_pem(alg)?;
    write_private(out, pem.as_bytes())?;
    let jwk = public_jwk_of(alg, pem.as_bytes())?;
    let text = serde_json::to_string_pretty(&jwk).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

/// Creates the file readable by its owner only, and never overwrites one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    // A missing folder is made, readable by its owner only, like the key.
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| format!("{}: cannot make the folder: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn secret() -> Result<(), String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the random generator failed".to_string())?;
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    println!("secret: {secret}");
    println!("secret_sha256: {}", crate::clients::sha256_hex(&secret));
    Ok(())
}
