//! The member query of a generated fleet group, run on its catalog database.

use std::time::Duration;

use super::Session;
use crate::error::{Error, Result};

/// The query is the operator's, from the config: it runs read-only and bounded.
const MEMBER_QUERY_TIMEOUT: Duration = Duration::from_secs(10);
const BEGIN_READ_ONLY_BOUNDED: &str =
    "BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = 10000";
const ROLLBACK: &str = "ROLLBACK";

/// One row of the member query: a target's name and its URL (without password).
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub name: String,
    pub url: String,
}

/// Run the group's `query` in a read-only transaction; its first two columns must be text.
pub async fn member_rows(s: &Session, query: &str) -> Result<Vec<MemberRow>> {
    let run = async {
        s.client
            .batch_execute(BEGIN_READ_ONLY_BOUNDED)
            .await
            .map_err(|e| Error::db("starting the member query", &e))?;
        let rows = s
            .client
            .simple_query(query)
            .await
            .map_err(|e| Error::db("running the group's member query", &e))?;
        let mut out = Vec::new();
        for m in rows {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                if r.len() < 2 {
                    return Err(Error::Usage(
                        "it must return two columns, name and url (e.g. SELECT name, url FROM tenants)"
                            .into(),
                    ));
                }
                match (r.get(0), r.get(1)) {
                    (Some(name), Some(url)) => out.push(MemberRow {
                        name: name.to_string(),
                        url: url.to_string(),
                    }),
                    _ => {
                        return Err(Error::Usage(format!(
                            "row {} has a NULL name or url",
                            out.len() + 1
                        )));
                    }
                }
            }
        }
        s.client.batch_execute(ROLLBACK).await.ok();
        Ok(out)
    };
    tokio::time::timeout(MEMBER_QUERY_TIMEOUT + Duration::from_secs(1), run)
        .await
        .map_err(|_| Error::Failed("the group's member query gave no answer in 10s".into()))?
}
