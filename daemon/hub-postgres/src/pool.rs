//! A small blocking connection pool: at most `max` connections, made when
//! first needed, reused while they work, dropped when they broke.
//!
//! Why not r2d2: it needs a thread pool of its own for reaping and a
//! second crate for the PostgreSQL adapter, for what is here a mutex, a
//! condition variable and a list. Each pooled connection also caches its
//! prepared statements ([`PgConn::prepare`]): a statement prepared once per
//! connection saves a round trip on every later use.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use postgres::{Client, NoTls, Statement};

use crate::{PgError, PgTarget};

/// How long a caller waits for a free connection before it is told the
/// database is overloaded (and may retry later).
const WAIT: Duration = Duration::from_secs(30);

pub(crate) struct PgConn {
    pub(crate) client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl PgConn {
    /// `sql` prepared on this connection, once.
    pub(crate) fn prepare(&mut self, sql: &'static str) -> Result<Statement, PgError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

struct State {
    idle: Vec<PgConn>,
    /// Connections in use or idle.
    open: usize,
}

pub(crate) struct Pool {
    // Boxed: the driver's settings are large, and the store sits in an
    // enum beside the SQLite one (`outpost_hub::backend::Backend`).
    target: Box<PgTarget>,
    max: usize,
    state: Mutex<State>,
    freed: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state is a list and a count, consistent after every statement:
    // a panic elsewhere while it was held leaves nothing half-done.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    pub(crate) fn new(target: PgTarget, max: usize) -> Pool {
        Pool {
            target: Box::new(target),
            max: max.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// A connection: an idle one, a new one while fewer than `max` are
    /// open, or the next one freed.
    pub(crate) fn get(&self) -> Result<Pooled<'_>, PgError> {
        let mut state = lock(&self.state);
        loop {
            while let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Pooled {
                    conn: Some(conn),
                    pool: self,
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(conn) => Ok(Pooled {
                        conn: Some(conn),
                        pool: self,
                    }),
                    Err(e) => {
                        lock(&self.state).open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let (next, timeout) = self
                .freed
                .wait_timeout(state, WAIT)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            if timeout.timed_out() && state.idle.is_empty() && state.open >= self.max {
                return Err(PgError::Busy(self.max));
            }
        }
    }

    fn connect(&self) -> Result<PgConn, PgError> {
        Ok(PgConn {
            client: connect(&self.target)?,
            statements: HashMap::new(),
        })
    }
}

/// A new connection with the hub's session settings: the one place a
/// connection to the database is made (TLS as the target says).
pub(crate) fn connect(target: &PgTarget) -> Result<Client, PgError> {
    let made = match &target.tls {
        Some(tls) => target.config.connect(tls.clone()),
        None => target.config.connect(NoTls),
    };
    let mut client =
        made.map_err(|e| crate::tls::explain(e, &target.host, target.mode, &target.roots))?;
    // A transaction left open by a stalled caller must not hold an
    // org's feed lock for ever.
    client.batch_execute("SET idle_in_transaction_session_timeout = '60s'")?;
    Ok(client)
}

/// A connection on loan; back to the pool when dropped.
pub(crate) struct Pooled<'a> {
    conn: Option<PgConn>,
    pool: &'a Pool,
}

impl Deref for Pooled<'_> {
    type Target = PgConn;
    fn deref(&self) -> &PgConn {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut PgConn {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.pool.state);
        match self.conn.take() {
            // A connection dropped while unwinding may be mid-transaction
            // (postgres' Transaction rolls back on drop, but a panic
            // inside the driver might not): only a clean one goes back.
            Some(conn) if !conn.client.is_closed() && !std::thread::panicking() => {
                state.idle.push(conn)
            }
            _ => state.open -= 1,
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}
