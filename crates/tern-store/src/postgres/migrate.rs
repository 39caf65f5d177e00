//! `tern store migrate`: copies a whole deployment from the embedded SQLite
//! store into a PostgreSQL database, row for row, so that IMAP and JMAP
//! clients do not resynchronise: ids, UIDs, UIDVALIDITY, modseqs and the
//! change journal (with each account's `journal_floor`) are kept exactly.
//!
//! - The two schemas have the same tables and columns by design
//!   (`schema.rs` of each backend); SQLite's 0/1 integers become BOOLEAN,
//!   message bytes become `blob_chunk` rows of [`blobs::CHUNK`] bytes, and
//!   `email_text` (the search text, which SQLite keeps in a separate index
//!   file) is derived from each email's message as delivery derives it.
//! - Resumable: every table is copied in key order (keyset pagination), a
//!   batch at a time, each batch in one PostgreSQL transaction together
//!   with its row in `migrate_progress`. An interrupted run (Ctrl-C, kill,
//!   a lost connection) loses at most the batch in flight, and the same
//!   command continues after the last committed key.
//! - The source is opened read-only and read in one snapshot per run; the
//!   caller must make sure no server writes it meanwhile (the binary holds
//!   the data directory's serve lock for the whole run).
//! - A target that already holds a deployment is refused unless the
//!   progress rows say it is this source's own earlier, interrupted run.
//! - At the end the identity sequences are moved past the copied ids (and
//!   past every id SQLite ever handed out: an email id is never reused),
//!   and the row counts of every table are compared.

mod progress;
mod tables;

use super::blobs;
use super::PgOptions;
use crate::error::{Result, StoreError};
pub use progress::unfinished;
use progress::{
    check_unchanged, decode_key, encode_key, load_progress, source_fingerprint, PROGRESS_TABLE,
};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use tables::Kind::{Bool, Bytes, Int, Text};
use tables::{Kind, Shape, Table, IDENTITIES, TABLES};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

/// Rows copied per transaction: large enough that the round trips do not
/// dominate, small enough that an interruption repeats little.
pub const BATCH_ROWS: usize = 500;

/// Bytes (message data, text) read per batch at most: a batch of large
/// messages is cut short so memory stays bounded (one row always goes, so
/// a message larger than this is copied alone).
pub const BATCH_BYTES: usize = 32 * 1024 * 1024;

/// The advisory lock held by a running migration ("ternmigr" in ASCII), so
/// two runs into one database never interleave their batches.
const MIGRATE_LOCK: i64 = 0x7465_726e_6d69_6772;

/// What the progress callback hears: after each committed batch, and as
/// each table starts and ends.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub table: &'a str,
    /// This table's place among all, from 1.
    pub index: usize,
    pub tables: usize,
    /// Rows of this table copied so far (by earlier runs too).
    pub done: u64,
    /// Rows of this table in the source.
    pub total: u64,
    /// The table is complete.
    pub finished: bool,
}

/// The callback's answer: go on, or stop after what is committed (the
/// next run continues from there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Rows of one table (or another measure) in the source and the target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    pub table: String,
    pub source: u64,
    pub target: u64,
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every table was copied; false when the callback stopped the run.
    pub complete: bool,
    /// The run continued an earlier one into the same database.
    pub resumed: bool,
    /// Per table, rows in the source and the target (when complete).
    pub counts: Vec<Count>,
}

impl Report {
    /// The tables whose counts differ.
    pub fn mismatches(&self) -> impl Iterator<Item = &Count> {
        self.counts.iter().filter(|c| c.source != c.target)
    }
}

/// Copies the SQLite store in the file `source` (a `tern.db`) into the
/// PostgreSQL database `target` names (its URL and TLS; creating the
/// schema if needed), continuing an earlier run of the same source if
/// there was one.
pub async fn from_sqlite<F>(source: &Path, target: &PgOptions, mut progress: F) -> Result<Report>
where
    F: FnMut(&Progress<'_>) -> Flow + Send,
{
    let (conn, source_id) = open_source(source).await?;
    let (config, tls) = super::tls::prepare(&target.url, target.tls_roots.as_ref())?;
    let (mut client, connection) = config
        .connect(tls)
        .await
        .map_err(|e| StoreError::backend("connecting to PostgreSQL", e))?;
    let driver = tokio::spawn(connection);
    let result = run(&mut client, conn, &source_id, &mut progress).await;
    drop(client);
    let _ = driver.await;
    result
}

/// Opens the SQLite file read-only, in one snapshot for the whole run
/// (an open read transaction), after checking its schema is the one
/// this build copies. Also returns the name progress rows use for it.
async fn open_source(path: &Path) -> Result<(Connection, String)> {
    let path = path.to_path_buf();
    blocking(move || {
        if !path.is_file() {
            return Err(StoreError::Invalid(format!(
                "no SQLite store at {}",
                path.display()
            )));
        }
        let canonical = std::fs::canonicalize(&path)
            .map_err(|e| StoreError::backend(format!("resolving {}", path.display()), e))?;
        let conn = Connection::open_with_flags(
            &canonical,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::backend(format!("opening {}", canonical.display()), e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite("setting the busy timeout"))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite("reading the SQLite schema version"))?;
        let known = crate::sqlite::schema::SCHEMA_VERSION;
        if version != known {
            return Err(StoreError::Invalid(if version < known {
                format!(
                    "the SQLite store {} has schema version {version}; this Tern copies \
                     version {known}: open it once with this Tern (e.g. `tern account list`) \
                     to bring it up to date, then migrate",
                    canonical.display()
                )
            } else {
                format!(
                    "the SQLite store {} has schema version {version}, newer than this Tern \
                     knows ({known}); upgrade Tern",
                    canonical.display()
                )
            }));
        }
        conn.execute_batch("BEGIN")
            .map_err(sqlite("starting the read of the SQLite store"))?;
        Ok((conn, canonical.display().to_string()))
    })
    .await
}

async fn run<F>(
    client: &mut Client,
    mut conn: Connection,
    source: &str,
    progress: &mut F,
) -> Result<Report>
where
    F: FnMut(&Progress<'_>) -> Flow + Send,
{
    super::schema::migrate(client).await?;
    client
        .batch_execute(PROGRESS_TABLE)
        .await
        .map_err(pg("creating migrate_progress"))?;
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(pg("taking the migration lock"))?
        .get(0);
    if !locked {
        return Err(StoreError::Invalid(
            "another `tern store migrate` is copying into this database; wait for it to end".into(),
        ));
    }
    let saved = load_progress(client, source).await?;
    let resumed = !saved.is_empty();
    if !resumed {
        let occupied: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM domain) OR EXISTS (SELECT 1 FROM account)",
                &[],
            )
            .await
            .map_err(pg("checking that the database is empty"))?
            .get(0);
        if occupied {
            return Err(StoreError::Invalid(
                "the PostgreSQL database already holds domains or accounts, and no \
                 interrupted migration of this SQLite store: the target must be empty \
                 (create a new database, or drop this one's tables)"
                    .into(),
            ));
        }
    }

    let (totals, fingerprint);
    (conn, totals, fingerprint) = blocking(move || {
        let totals = TABLES
            .iter()
            .map(|t| source_count(&conn, t))
            .collect::<Result<Vec<u64>>>();
        let fingerprint = source_fingerprint(&conn);
        (conn, totals, fingerprint)
    })
    .await;
    let totals = totals?;
    check_unchanged(client, source, &fingerprint?).await?;

    for (i, table) in TABLES.iter().enumerate() {
        let state = saved.iter().find(|s| s.table == table.name);
        let mut key = match state {
            Some(s) => s.last_key.as_deref().map(decode_key).transpose()?,
            None => None,
        };
        let mut done = state.map(|s| s.rows).unwrap_or(0);
        let finished = state.is_some_and(|s| s.done);
        let mut report = |done: u64, finished: bool| {
            progress(&Progress {
                table: table.name,
                index: i + 1,
                tables: TABLES.len(),
                done,
                total: totals[i],
                finished,
            })
        };
        if report(done, finished) == Flow::Stop {
            return Ok(stopped(resumed));
        }
        if finished {
            continue;
        }
        let insert = insert_sql(table);
        loop {
            let after = key.clone();
            let batch;
            (conn, batch) = blocking(move || {
                let batch = read_batch(&conn, table, after.as_deref());
                (conn, batch)
            })
            .await;
            let batch = batch?;
            done += batch.rows as u64;
            write_batch(client, source, table, &insert, &batch, done).await?;
            if batch.last_key.is_some() {
                key = batch.last_key;
            }
            if report(done, batch.exhausted) == Flow::Stop {
                return Ok(stopped(resumed));
            }
            if batch.exhausted {
                break;
            }
        }
    }

    let used;
    (conn, used) = blocking(move || {
        let used = ids_used(&conn);
        (conn, used)
    })
    .await;
    advance_sequences(client, &used?).await?;
    let counts = verify(client, conn, &totals).await?;
    client
        .execute(
            "UPDATE migrate_progress SET done = TRUE WHERE source = $1 AND table_name = '#source'",
            &[&source],
        )
        .await
        .map_err(pg("recording the end of the copy"))?;
    Ok(Report {
        complete: true,
        resumed,
        counts,
    })
}

fn stopped(resumed: bool) -> Report {
    Report {
        complete: false,
        resumed,
        counts: Vec::new(),
    }
}

/// Runs SQLite work (and anything CPU-bound) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(context, e)
}

fn pg<C: Into<String>>(context: C) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::backend(context, e)
}

fn source_count(conn: &Connection, table: &Table) -> Result<u64> {
    let from = match table.shape {
        Shape::EmailText => "email",
        Shape::Plain | Shape::Blob | Shape::EmailMeta | Shape::EmailHeader => table.from,
    };
    conn.query_row(&format!("SELECT count(*) FROM {from}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
    .map_err(|e| StoreError::backend(format!("counting the rows of {from}"), e))
}

/// A batch read from SQLite, already in PostgreSQL's shape.
struct Batch {
    rows: usize,
    /// The key of its last row (none for an empty batch).
    last_key: Option<Vec<Value>>,
    /// No rows are left after this batch.
    exhausted: bool,
    /// One array per inserted column.
    columns: Vec<Array>,
    /// A blob batch's chunks.
    chunks: Option<Chunks>,
}

/// `blob_chunk` rows, column by column.
#[derive(Default)]
struct Chunks {
    hashes: Vec<String>,
    seqs: Vec<i32>,
    data: Vec<Vec<u8>>,
}

/// A column of a batch, bound as one PostgreSQL array (`unnest` turns
/// the arrays back into rows: one statement per batch).
enum Array {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Array {
    fn new(kind: Kind) -> Array {
        match kind {
            Int => Array::Int(Vec::new()),
            Text => Array::Text(Vec::new()),
            Bool => Array::Bool(Vec::new()),
            Bytes => Array::Bytes(Vec::new()),
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Array::Int(v) => v,
            Array::Text(v) => v,
            Array::Bool(v) => v,
            Array::Bytes(v) => v,
        }
    }

    fn push(&mut self, v: ValueRef<'_>, table: &str, column: &str) -> Result<()> {
        let wrong = || {
            StoreError::Invalid(format!(
                "{table}.{column} holds a {:?} value where this copy expects another type",
                v.data_type()
            ))
        };
        match self {
            Array::Int(a) => a.push(match v {
                ValueRef::Null => None,
                ValueRef::Integer(i) => Some(i),
                _ => return Err(wrong()),
            }),
            Array::Bool(a) => a.push(match v {
                ValueRef::Null => None,
                ValueRef::Integer(i) => Some(i != 0),
                _ => return Err(wrong()),
            }),
            Array::Text(a) => a.push(match v {
                ValueRef::Null => None,
                ValueRef::Text(t) | ValueRef::Blob(t) => Some(text(t)),
                ValueRef::Integer(i) => Some(i.to_string()),
                ValueRef::Real(_) => return Err(wrong()),
            }),
            Array::Bytes(a) => a.push(match v {
                ValueRef::Null => None,
                ValueRef::Blob(b) | ValueRef::Text(b) => Some(b.to_vec()),
                _ => return Err(wrong()),
            }),
        }
        Ok(())
    }
}

/// SQLite text as PostgreSQL TEXT: valid UTF-8 and no NUL (which
/// PostgreSQL cannot hold; delivery drops them the same way).
fn text(bytes: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    super::delivery::without_nul(&mut s);
    s
}

/// A SQLite blob row's bytes as received (SQLite may store them
/// compressed; PostgreSQL's chunks hold them as they came).
fn stored_bytes<'a>(
    data: &'a [u8],
    codec: ValueRef<'_>,
    size: ValueRef<'_>,
) -> Result<std::borrow::Cow<'a, [u8]>> {
    use crate::sqlite::blob_codec::{decode, RAW};
    match codec.as_i64().unwrap_or(RAW) {
        // Most rows: the bytes as they are, not copied.
        RAW => Ok(std::borrow::Cow::Borrowed(data)),
        codec => {
            let size = size.as_i64_or_null().ok().flatten();
            decode(data.to_vec(), codec, size).map(std::borrow::Cow::Owned)
        }
    }
}

/// The columns a table's batch inserts, with their kinds.
fn target_columns(table: &Table) -> Vec<(&'static str, Kind)> {
    match table.shape {
        Shape::Plain | Shape::EmailHeader => {
            table.columns.iter().map(|c| (c.name, c.kind)).collect()
        }
        Shape::Blob => vec![("hash", Text), ("refs", Int), ("size", Int)],
        Shape::EmailMeta => vec![
            ("email_id", Int),
            ("envelope", Text),
            ("structure", Text),
            ("summary", Text),
        ],
        Shape::EmailText => vec![
            ("email_id", Int),
            ("account_id", Int),
            ("headers", Text),
            ("body", Text),
        ],
    }
}

fn insert_sql(table: &Table) -> String {
    let columns = target_columns(table);
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            let ty = match kind {
                Int => "bigint",
                Text => "text",
                Bool => "boolean",
                Bytes => "bytea",
            };
            format!("${}::{ty}[]", i + 1)
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) SELECT * FROM unnest({}) {}",
        table.name,
        names.join(", "),
        arrays.join(", "),
        table.on_conflict
    )
}

/// Reads the rows after `after` (in key order), up to [`BATCH_ROWS`] or
/// [`BATCH_BYTES`], and converts them.
fn read_batch(conn: &Connection, table: &Table, after: Option<&[Value]>) -> Result<Batch> {
    let exprs: Vec<&str> = table.columns.iter().map(|c| c.expr).collect();
    let keys = &exprs[..table.key];
    let filter = match after {
        Some(_) => {
            let marks: Vec<String> = (1..=table.key).map(|i| format!("?{i}")).collect();
            format!("WHERE ({}) > ({})", keys.join(", "), marks.join(", "))
        }
        None => String::new(),
    };
    let sql = format!(
        "SELECT {} FROM {} {filter} ORDER BY {} LIMIT {}",
        exprs.join(", "),
        table.from,
        keys.join(", "),
        BATCH_ROWS
    );
    let fail = |e| StoreError::backend(format!("reading {} from SQLite", table.name), e);
    let mut stmt = conn.prepare(&sql).map_err(fail)?;
    let params = after.unwrap_or(&[]);
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(fail)?;
    let mut columns: Vec<Array> = target_columns(table)
        .iter()
        .map(|(_, k)| Array::new(*k))
        .collect();
    let mut chunks = (table.shape == Shape::Blob).then(Chunks::default);
    let (mut count, mut bytes, mut last_key) = (0usize, 0usize, None);
    let mut exhausted = true;
    while let Some(row) = rows.next().map_err(fail)? {
        let values: Vec<ValueRef<'_>> = (0..table.columns.len())
            .map(|i| row.get_ref(i))
            .collect::<rusqlite::Result<_>>()
            .map_err(fail)?;
        bytes += values
            .iter()
            .map(|v| v.as_bytes().map_or(8, <[u8]>::len))
            .sum::<usize>();
        match table.shape {
            Shape::Plain => {
                for ((array, col), v) in columns.iter_mut().zip(table.columns).zip(&values) {
                    array.push(*v, table.name, col.name)?;
                }
            }
            Shape::Blob => {
                let data = values[2].as_bytes().map_err(|_| {
                    StoreError::Invalid("a blob row of SQLite holds no bytes".into())
                })?;
                let data = &stored_bytes(data, values[3], values[4])?[..];
                columns[0].push(values[0], "blob", "hash")?;
                columns[1].push(values[1], "blob", "refs")?;
                columns[2].push(ValueRef::Integer(data.len() as i64), "blob", "size")?;
                if let (Some(chunks), ValueRef::Text(hash)) = (chunks.as_mut(), values[0]) {
                    for (seq, chunk) in data.chunks(blobs::CHUNK).enumerate() {
                        chunks.hashes.push(text(hash));
                        chunks.seqs.push(seq as i32);
                        chunks.data.push(chunk.to_vec());
                    }
                }
            }
            Shape::EmailHeader => {
                columns[0].push(values[0], "email_header", "account_id")?;
                columns[1].push(values[1], "email_header", "email_id")?;
                let header = crate::sqlite::header_block::unpack(values[2]).map_err(|e| {
                    StoreError::Invalid(format!("email {:?}: {e}", values[1].as_i64().ok()))
                })?;
                columns[2].push(
                    ValueRef::Text(header.as_bytes()),
                    "email_header",
                    "header_raw",
                )?;
            }
            Shape::EmailMeta => {
                columns[0].push(values[0], "email_meta", "email_id")?;
                match values[4].as_bytes_or_null().ok().flatten() {
                    None => {
                        for (i, name) in [(1, "envelope"), (2, "structure"), (3, "summary")] {
                            columns[i].push(values[i], "email_meta", name)?;
                        }
                    }
                    Some(packed) => {
                        let bundle = crate::sqlite::blob_codec::unpack(packed)?;
                        let bad = |e| StoreError::backend("reading a packed email parse", e);
                        let parse: [serde_json::Value; 3] =
                            serde_json::from_slice(&bundle).map_err(bad)?;
                        for (i, (json, name)) in parse
                            .iter()
                            .zip(["envelope", "structure", "summary"])
                            .enumerate()
                        {
                            let text = serde_json::to_string(json).map_err(bad)?;
                            columns[i + 1].push(
                                ValueRef::Text(text.as_bytes()),
                                "email_meta",
                                name,
                            )?;
                        }
                    }
                }
            }
            Shape::EmailText => {
                columns[0].push(values[0], "email", "id")?;
                columns[1].push(values[1], "email", "account_id")?;
                // An email whose blob is gone (it should not be) gets
                // empty text: it is still found by everything else.
                let raw = match values[2].as_bytes() {
                    Ok(data) => stored_bytes(data, values[3], values[4])?,
                    Err(_) => std::borrow::Cow::Borrowed(&[][..]),
                };
                let raw = &raw[..];
                let parsed = crate::message::parse_message(raw);
                let (headers, body) = crate::sqlite::indexer::index_text(raw, &parsed);
                columns[2].push(ValueRef::Text(headers.as_bytes()), "email_text", "headers")?;
                columns[3].push(ValueRef::Text(body.as_bytes()), "email_text", "body")?;
            }
        }
        last_key = Some(
            values[..table.key]
                .iter()
                .map(|v| Value::from(*v))
                .collect::<Vec<_>>(),
        );
        count += 1;
        if count == BATCH_ROWS || bytes >= BATCH_BYTES {
            exhausted = false;
            break;
        }
    }
    Ok(Batch {
        rows: count,
        last_key,
        exhausted,
        columns,
        chunks,
    })
}

/// Inserts a batch and records how far the table got, in one commit.
async fn write_batch(
    client: &mut Client,
    source: &str,
    table: &Table,
    insert: &str,
    batch: &Batch,
    done: u64,
) -> Result<()> {
    let fail = |what: &str| format!("copying {} into PostgreSQL: {what}", table.name);
    let tx = client
        .transaction()
        .await
        .map_err(pg(fail("starting a transaction")))?;
    if batch.rows > 0 {
        let params: Vec<&(dyn ToSql + Sync)> = batch.columns.iter().map(Array::param).collect();
        tx.execute(insert, &params)
            .await
            .map_err(pg(fail("inserting the rows")))?;
    }
    if let Some(chunks) = &batch.chunks {
        if !chunks.hashes.is_empty() {
            tx.execute(
                "INSERT INTO blob_chunk (hash, seq, data)
                 SELECT * FROM unnest($1::text[], $2::int[], $3::bytea[])",
                &[&chunks.hashes, &chunks.seqs, &chunks.data],
            )
            .await
            .map_err(pg(fail("inserting the blob chunks")))?;
        }
    }
    let key = batch.last_key.as_deref().map(encode_key).transpose()?;
    tx.execute(
        "INSERT INTO migrate_progress (source, table_name, last_key, rows, done)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (source, table_name) DO UPDATE
         SET last_key = coalesce(excluded.last_key, migrate_progress.last_key),
             rows = excluded.rows, done = excluded.done",
        &[&source, &table.name, &key, &(done as i64), &batch.exhausted],
    )
    .await
    .map_err(pg(fail("recording progress")))?;
    tx.commit().await.map_err(pg(fail("committing")))
}

/// Moves each identity past the copied ids and past every id SQLite ever
/// gave out (`sqlite_sequence`: AUTOINCREMENT never reuses one, and JMAP
/// clients may remember a deleted email's id); and queue leases past the
/// copied ones, so a new claim never takes the number of an old lease.
async fn advance_sequences(client: &Client, used: &[i64]) -> Result<()> {
    for ((table, column), used) in IDENTITIES.iter().zip(used) {
        client
            .execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), v)
                       FROM (SELECT greatest($1::bigint, (SELECT max({column}) FROM {table})) AS v) s
                      WHERE v >= 1"
                ),
                &[used],
            )
            .await
            .map_err(pg(format!("advancing the ids of {table}")))?;
    }
    client
        .execute(
            "SELECT setval('queue_lease_seq', v)
               FROM (SELECT greatest((SELECT value FROM meta WHERE key = 'lease_seq'),
                                     (SELECT max(lease_id) FROM queue_message)) AS v) s
              WHERE v >= 1",
            &[],
        )
        .await
        .map_err(pg("advancing the queue's lease numbers"))?;
    Ok(())
}

/// The highest id SQLite handed out per identity of [`IDENTITIES`].
fn ids_used(conn: &Connection) -> Result<Vec<i64>> {
    IDENTITIES
        .iter()
        .map(|(table, _)| {
            conn.query_row(
                "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0)",
                [table],
                |r| r.get(0),
            )
            .map_err(sqlite("reading sqlite_sequence"))
        })
        .collect()
}

/// Row counts of every table in both stores (SQLite's from this run's
/// snapshot), and the message bytes.
async fn verify(client: &Client, conn: Connection, totals: &[u64]) -> Result<Vec<Count>> {
    let (conn, extra) = blocking(move || {
        let extra = (|| -> rusqlite::Result<(i64, Vec<String>)> {
            let bytes = conn.query_row(
                "SELECT coalesce(sum(coalesce(size, length(data))), 0) FROM blob",
                [],
                |r| r.get(0),
            )?;
            let keys = conn
                .prepare("SELECT key FROM meta")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((bytes, keys))
        })();
        (conn, extra)
    })
    .await;
    let (source_bytes, meta_keys) = extra.map_err(sqlite("measuring the SQLite store"))?;
    drop(conn);
    let mut counts = Vec::new();
    for (table, &source) in TABLES.iter().zip(totals) {
        let counted = if table.name == "meta" {
            // The new schema starts counters of its own: only the
            // source's keys count.
            client
                .query_one(
                    "SELECT count(*) FROM meta WHERE key = ANY($1)",
                    &[&meta_keys],
                )
                .await
        } else {
            client
                .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])
                .await
        };
        let row = counted.map_err(pg(format!("counting the rows of {}", table.name)))?;
        counts.push(Count {
            table: table.name.to_string(),
            source,
            target: row.get::<_, i64>(0) as u64,
        });
    }
    let target_bytes: i64 = client
        .query_one(
            "SELECT coalesce(sum(octet_length(data)), 0)::bigint FROM blob_chunk",
            &[],
        )
        .await
        .map_err(pg("measuring the blob chunks"))?
        .get(0);
    counts.push(Count {
        table: "blob bytes".into(),
        source: source_bytes as u64,
        target: target_bytes as u64,
    });
    Ok(counts)
}

/// The SQLite database a `--from` path names: the file itself, or
/// `tern.db` inside a data directory.
pub fn sqlite_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("tern.db")
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_their_progress_row() {
        let key = vec![Value::Integer(-7), Value::Text("a \"b\" ☃".into())];
        assert_eq!(decode_key(&encode_key(&key).unwrap()).unwrap(), key);
        assert!(decode_key("[1.5]").is_err());
    }

    #[test]
    fn every_table_pages_by_a_key_it_selects() {
        for t in TABLES {
            assert!(t.key >= 1 && t.key <= t.columns.len(), "{}", t.name);
            let sql = insert_sql(t);
            assert!(
                sql.starts_with(&format!("INSERT INTO {} (", t.name)),
                "{sql}"
            );
        }
    }

    /// Every table of the SQLite schema is copied (or is derived data).
    #[test]
    fn no_sqlite_table_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tern.db");
        let store =
            crate::sqlite::SqliteStore::open(&path, crate::sqlite::SqliteOptions::default())
                .unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let names: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for name in names {
            assert!(
                TABLES.iter().any(|t| t.name == name),
                "table {name} is not copied by tern store migrate"
            );
        }
    }
}
