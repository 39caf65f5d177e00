//! Search on PostgreSQL (being written).
