-- Osprey's ClickHouse table (docs/integrations.md), as `--clickhouse-create`
-- creates it: ClickHouse 18.16 (Debian 12) and later, tested against 18.16.
-- Rows are Osprey's JSON lines (FORMAT JSONEachRow with
-- input_format_skip_unknown_fields=1); `node` is added by the sink.
-- clickhouse-client --multiquery < schema-18.16.sql

CREATE DATABASE IF NOT EXISTS osprey;

CREATE TABLE IF NOT EXISTS osprey.transactions
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
    tls UInt8,
    tls_library Nullable(String),
    grpc_service Nullable(String),
    grpc_method Nullable(String),
    grpc_status Nullable(UInt32),
    grpc_message Nullable(String)
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (node, ifNull(comm, ''), ts)
SETTINGS index_granularity = 8192;
