//! Time budgets for audit queries (SPEC §6): an auditor's query must not hold a core, a
//! connection or SQLite's log for long. PostgreSQL's admin connections set `statement_timeout`.
//! SQLite has no such setting, so its audit queries call `tessera_budget()` on every row they
//! look at: a function of this process that ends the statement, with an error, once the
//! thread's deadline has passed.

use std::cell::Cell;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::Bool;

/// How long one audit query may run unless `storage.audit_query_budget` says otherwise.
pub const QUERY_BUDGET: Duration = Duration::from_secs(5);

/// What the failing function is called: its error names it.
const NAME: &str = "tessera_budget";

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

diesel::define_sql_function! {
    /// True while the calling thread's query is within its budget.
    fn tessera_budget() -> Bool;
}

/// Makes `tessera_budget()` known to a SQLite connection.
pub fn register(conn: &mut SqliteConnection) -> QueryResult<()> {
    conn.register_noarg_sql_function::<Bool, bool, _>(NAME, false, || {
        if DEADLINE.with(Cell::get).is_some_and(|d| Instant::now() > d) {
            // Unwinding (without the panic hook: nothing is printed) is how a SQL function
            // fails its statement here; diesel turns it into the statement's error.
            std::panic::resume_unwind(Box::new("over budget"));
        }
        true
    })
}

/// Runs `work` on this thread with a deadline `budget` from now for its SQLite statements.
pub fn within<T>(budget: Duration, work: impl FnOnce() -> T) -> T {
    let previous = DEADLINE.with(|d| d.replace(Some(Instant::now() + budget)));
    let result = work();
    DEADLINE.with(|d| d.set(previous));
    result
}

/// Whether a failed statement was ended by its budget (on either backend).
pub fn exceeded(error: &str) -> bool {
    error.contains(NAME) || error.contains("statement timeout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_past_its_budget_fails_and_others_run() {
        let mut conn = SqliteConnection::establish(":memory:").expect("a database");
        register(&mut conn).expect("registered");
        let over = within(Duration::ZERO, || {
            diesel::select(tessera_budget()).get_result::<bool>(&mut conn)
        });
        assert!(exceeded(&over.expect_err("over budget").to_string()));
        let fine = within(Duration::from_secs(60), || {
            diesel::select(tessera_budget()).get_result::<bool>(&mut conn)
        });
        assert_eq!(fine, Ok(true));
        // Without a budget, the function never fails.
        assert_eq!(
            diesel::select(tessera_budget()).get_result::<bool>(&mut conn),
            Ok(true)
        );
    }
}
