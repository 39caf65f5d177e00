//! Every Store backend against the one conformance suite, plus what each
//! can only show with real processes (crashes, several nodes). One test
//! binary for the crate: `sqlite::` runs everywhere, `postgres::` against
//! the server named by `TERN_TEST_POSTGRES` (`scripts/test.sh` starts one).

mod postgres;
mod sqlite;
