//! Whole databases: the sandbox's demo database and the checklist's scratch databases. Names are
//! quoted by [`quote_ident`]; `CREATE DATABASE` takes no bound parameters.

use super::Session;
use crate::sql::quote_ident;

const CREATE: &str = "CREATE DATABASE ";
const DROP_FORCED: &str = "DROP DATABASE IF EXISTS ";

/// `CREATE DATABASE name`; the server's error as it came, for the caller to word.
pub async fn create(s: &Session, name: &str) -> Result<(), tokio_postgres::Error> {
    s.client
        .batch_execute(&format!("{CREATE}{}", quote_ident(name)))
        .await
}

/// Drop `name` if it exists, ending the sessions still connected to it.
pub async fn drop_forced(s: &Session, name: &str) -> Result<(), tokio_postgres::Error> {
    s.client
        .batch_execute(&format!("{DROP_FORCED}{} WITH (FORCE)", quote_ident(name)))
        .await
}
