//! Raw SQL that Postgres keeps prepared.
//!
//! diesel never caches a `sql_query` as a prepared statement (its text could be built at run
//! time), so every execution costs a parse, an analysis and a plan: at a few hundred events a
//! second, one statement per event, that was about a third of Postgres's CPU (`perf`). The hot
//! statements of this crate are constant texts, so they are safe to prepare once per
//! connection; [`statement`] takes only a `&'static str` to keep it so.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, BoxedSqlQuery, Query, QueryFragment, QueryId, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::HasSqlType;
use diesel::QueryResult;

/// A constant SQL text and its binds, prepared once per connection and then reused.
#[must_use = "a query runs only when loaded or executed"]
pub struct Prepared<'f> {
    query: BoxedSqlQuery<'f, Pg, SqlQuery>,
    keep: bool,
}

/// Starts a prepared statement from a constant text; bind its parameters with `bind`.
pub fn statement<'f>(sql: &'static str) -> Prepared<'f> {
    Prepared {
        query: diesel::sql_query(sql).into_boxed(),
        keep: true,
    }
}

impl<'f> Prepared<'f> {
    /// Binds the next parameter (`$1`, `$2`, … in order).
    pub fn bind<ST, V>(self, value: V) -> Self
    where
        Pg: HasSqlType<ST>,
        V: ToSql<ST, Pg> + Send + 'f,
        ST: Send + 'f,
    {
        Prepared {
            query: self.query.bind::<ST, V>(value),
            keep: self.keep,
        }
    }

    /// Plans this execution for its own parameters instead of reusing the connection's plan:
    /// worth its planning time when the arrays bound are long, where a plan made for their
    /// actual size beats the generic one (500-event batches ingest about 25 % faster).
    pub fn planned_alone(self, alone: bool) -> Self {
        Prepared {
            query: self.query,
            keep: !alone,
        }
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    // The text came from a `&'static str` (see `statement`), so it is the same every time and
    // the statement cache, keyed by text and bind types, can hold it.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(self.keep)
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = diesel::sql_types::Untyped;
}
