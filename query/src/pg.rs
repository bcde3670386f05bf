//! `infra-query serve --pg ADDR`: the archive over the PostgreSQL wire protocol
//! (datafusion-postgres on pgwire), for Grafana's PostgreSQL data source, psql, Metabase,
//! Superset and Python clients.
//!
//! - **Read-only**: only queries, `EXPLAIN`, `SHOW`, `SET` and the transaction and
//!   cursor statements clients send are accepted; everything else (DDL, DML, `COPY`,
//!   `CREATE EXTERNAL TABLE`, which could read any file) is refused with SQLSTATE 25006.
//! - **Password** from a file (its first line), checked for one user name (cleartext
//!   password authentication; use it on loopback or behind TLS).
//! - **Loopback by default**: `--pg` without a host part listens on 127.0.0.1.
//! - `pg_catalog` and the functions clients probe (`version()`, `current_schema()`, …)
//!   come from datafusion-pg-catalog.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::auth::AuthManager;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::hooks::{HookClient, QueryHook};
use datafusion_postgres::pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use datafusion_postgres::pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password,
};
use datafusion_postgres::pgwire::api::cancel::DefaultCancelHandler;
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::{
    ClientInfo, ConnectionManager, ErrorHandler, PgWireServerHandlers,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::{DfSessionService, ServerOptions, serve_with_handlers};

/// The user name clients log in as unless `--pg-user` says otherwise.
pub const DEFAULT_USER: &str = "infralog";

/// How `serve --pg` runs.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub addr: SocketAddr,
    pub user: String,
    pub password: String,
}

/// Reads the password: the first line of `path`, which must not be empty.
pub fn read_password_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read password file {}", path.display()))?;
    let password = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    if password.is_empty() {
        bail!("password file {} has an empty first line", path.display());
    }
    Ok(password.to_string())
}

/// Whether the statement only reads.
pub fn read_only(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowFunctions { .. }
            | Statement::Set(_)
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Declare { .. }
            | Statement::Fetch { .. }
            | Statement::Close { .. }
            | Statement::Discard { .. }
    )
}

fn refused(statement: &Statement) -> PgWireError {
    let text = statement.to_string();
    let head: String = text
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        "25006".to_string(), // read_only_sql_transaction
        format!("infra-query serves the archive read-only: {head} … is not allowed"),
    )))
}

/// Refuses every statement that is not [`read_only`], before the other hooks see it.
struct ReadOnlyHook;

#[async_trait]
impl QueryHook for ReadOnlyHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        (!read_only(statement)).then(|| Err(refused(statement)))
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        (!read_only(statement)).then(|| Err(refused(statement)))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        (!read_only(statement)).then(|| Err(refused(statement)))
    }
}

/// The password of the one user.
#[derive(Debug)]
struct FilePassword {
    user: String,
    password: String,
}

#[async_trait]
impl AuthSource for FilePassword {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        if user != self.user {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_string(),
                "28P01".to_string(),
                format!("password authentication failed for user \"{user}\""),
            ))));
        }
        Ok(Password::new(None, self.password.as_bytes().to_vec()))
    }
}

struct Handlers {
    session: Arc<DfSessionService>,
    startup: Arc<CleartextPasswordAuthStartupHandler<FilePassword, DefaultServerParameterProvider>>,
    cancel: Arc<DefaultCancelHandler>,
}

struct QuietErrors;

impl ErrorHandler for QuietErrors {
    fn on_error<C>(&self, _client: &C, _error: &mut PgWireError)
    where
        C: ClientInfo,
    {
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(
        &self,
    ) -> Arc<impl datafusion_postgres::pgwire::api::query::SimpleQueryHandler> {
        self.session.clone()
    }

    fn extended_query_handler(
        &self,
    ) -> Arc<impl datafusion_postgres::pgwire::api::query::ExtendedQueryHandler> {
        self.session.clone()
    }

    fn startup_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(QuietErrors)
    }

    fn cancel_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// Parses `--pg`: `HOST:PORT`, `:PORT` or `PORT` (loopback).
pub fn parse_addr(text: &str) -> Result<SocketAddr> {
    let t = text.trim();
    let with_host = if let Some(port) = t.strip_prefix(':') {
        format!("127.0.0.1:{port}")
    } else if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
        format!("127.0.0.1:{t}")
    } else {
        t.to_string()
    };
    with_host.parse().with_context(|| {
        format!("--pg {text:?} is not an address: write 5432, :5432, 127.0.0.1:5432 or [::1]:5432")
    })
}

/// Serves `ctx` until the process ends.
pub async fn serve(ctx: SessionContext, opts: &PgOptions) -> Result<()> {
    let catalog = ctx
        .state()
        .config()
        .options()
        .catalog
        .default_catalog
        .clone();
    setup_pg_catalog(&ctx, &catalog, Arc::new(AuthManager::default()))
        .context("cannot set up pg_catalog")?;
    let ctx = Arc::new(ctx);
    let hooks: Vec<Arc<dyn QueryHook>> = vec![
        Arc::new(ReadOnlyHook),
        Arc::new(CursorStatementHook),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ];
    let session = Arc::new(DfSessionService::new_with_hooks(ctx, hooks));
    let connections = Arc::new(ConnectionManager::new());
    let auth = FilePassword {
        user: opts.user.clone(),
        password: opts.password.clone(),
    };
    let handlers = Arc::new(Handlers {
        session,
        startup: Arc::new(
            CleartextPasswordAuthStartupHandler::new(
                auth,
                DefaultServerParameterProvider::default(),
            )
            .with_connection_manager(connections.clone()),
        ),
        cancel: Arc::new(DefaultCancelHandler::new(connections)),
    });
    let server = ServerOptions::new()
        .with_host(opts.addr.ip().to_string())
        .with_port(opts.addr.port());
    eprintln!(
        "infra-query: serving the archive read-only on postgresql://{}@{}/",
        opts.user, opts.addr
    );
    serve_with_handlers(handlers, &server)
        .await
        .with_context(|| format!("cannot serve on {}", opts.addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn statement(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("5433").unwrap().to_string(), "127.0.0.1:5433");
        assert_eq!(parse_addr(":5433").unwrap().to_string(), "127.0.0.1:5433");
        assert_eq!(
            parse_addr("0.0.0.0:5433").unwrap().to_string(),
            "0.0.0.0:5433"
        );
        assert_eq!(parse_addr("[::1]:5433").unwrap().to_string(), "[::1]:5433");
        let err = parse_addr("localhost").unwrap_err().to_string();
        assert!(err.contains("not an address"), "{err}");
    }

    #[test]
    fn only_reading_statements_pass() {
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT 1",
            "SHOW search_path",
            "SET extra_float_digits = 3",
            "BEGIN",
            "COMMIT",
        ] {
            assert!(read_only(&statement(sql)), "{sql}");
        }
        for sql in [
            "INSERT INTO logs VALUES (1)",
            "CREATE TABLE t (a INT)",
            "CREATE VIEW v AS SELECT 1",
            "DROP TABLE logs",
            "DELETE FROM logs",
            "COPY logs TO '/tmp/x'",
        ] {
            assert!(!read_only(&statement(sql)), "{sql}");
        }
    }

    #[test]
    fn password_file_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "secret\r\nignored\n").unwrap();
        assert_eq!(read_password_file(&p).unwrap(), "secret");
        std::fs::write(&p, "\nsecret\n").unwrap();
        assert!(
            read_password_file(&p)
                .unwrap_err()
                .to_string()
                .contains("empty first line")
        );
        assert!(read_password_file(&dir.path().join("none")).is_err());
    }
}
