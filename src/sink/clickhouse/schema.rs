// SPDX-License-Identifier: GPL-3.0-or-later
//! The table the ClickHouse sink inserts into. The same text is shipped as
//! `docs/clickhouse/schema-18.16.sql` (a unit test keeps them equal), with
//! `docs/clickhouse/schema-current.sql` for current releases.
//!
//! Columns are the transaction record's fields by their JSON names (rows
//! are the JSON lines themselves, `FORMAT JSONEachRow` with
//! `input_format_skip_unknown_fields=1`), so `osprey wire … | curl` inserts
//! wire-side records into the same table; `node` is added by the sink
//! (`--node-name`, the host name by default). `ts` is computed from
//! `ts_start_ns` on insert (MATERIALIZED). Works on ClickHouse 18.16
//! (Debian 12's): Nullable columns for nullable fields (18.16 cannot read
//! a JSON null into a plain column), no LowCardinality, no TTL.

/// `CREATE TABLE` for database `db`, table `table` (ClickHouse 18.16 and
/// later).
pub fn create_table(db: &str, table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {db}.{table}
(
    ts DateTime MATERIALIZED toDateTime(intDiv(ts_start_ns, 1000000000)),
    node String,
    source String,
    protocol String,
    ts_start_ns Int64,
    ts_end_ns Int64,
    latency_ns Nullable(UInt64),
    ttfb_ns Nullable(UInt64),
    method Nullable(String),
    target Nullable(String),
    path Nullable(String),
    host Nullable(String),
    http_version Nullable(String),
    status Nullable(UInt16),
    reason Nullable(String),
    req_header_count Nullable(UInt32),
    req_header_bytes Nullable(UInt64),
    resp_header_count Nullable(UInt32),
    resp_header_bytes Nullable(UInt64),
    req_body_bytes Nullable(UInt64),
    resp_body_bytes Nullable(UInt64),
    req_content_type Nullable(String),
    resp_content_type Nullable(String),
    pid Nullable(UInt32),
    tid Nullable(UInt32),
    comm Nullable(String),
    conn_id String,
    role String,
    local_addr Nullable(String),
    local_port Nullable(UInt16),
    remote_addr Nullable(String),
    remote_port Nullable(UInt16),
    gap UInt8,
    gap_cause Array(String),
    truncated UInt8,
    no_response UInt8,
    interim_status Nullable(UInt16),
    upgraded UInt8,
    incomplete UInt8,
    stream_id Nullable(UInt32),
    cgroup_id Nullable(UInt64),
    cgroup Nullable(String),
    container_id Nullable(String),
    container_runtime Nullable(String),
    container_name Nullable(String),
    pod_uid Nullable(String),
    pod_qos Nullable(String),
    pod_namespace Nullable(String),
    pod_name Nullable(String),
    workload Nullable(String),
    exe Nullable(String),
    grpc_service Nullable(String),
    grpc_method Nullable(String),
    grpc_status Nullable(UInt32),
    grpc_message Nullable(String)
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (node, ifNull(comm, ''), ts)
SETTINGS index_granularity = 8192
"
    )
}

/// The columns of [`create_table`], in order (for tests and docs).
pub fn columns() -> Vec<String> {
    let t = create_table("d", "t");
    let body = &t[t.find('(').unwrap_or(0) + 1..t.find("\n)").unwrap_or(t.len())];
    body.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_schema_is_the_one_created() {
        let doc = include_str!("../../../docs/clickhouse/schema-18.16.sql");
        let want = format!(
            "CREATE DATABASE IF NOT EXISTS osprey;\n\n{};\n",
            create_table("osprey", "transactions").trim_end()
        );
        assert!(
            doc.ends_with(&want),
            "docs/clickhouse/schema-18.16.sql differs from schema.rs; it should end with:\n{want}"
        );
        let cols = columns();
        assert_eq!(cols.first().map(String::as_str), Some("ts"));
        assert!(cols.contains(&"pod_name".to_string()));
        assert_eq!(cols.len(), 55);
    }
}
