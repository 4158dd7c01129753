-- Osprey's ClickHouse table for current ClickHouse releases (23.x and
-- later): LowCardinality strings, DateTime64(9), codecs, a 30-day TTL.
-- NOT tested here (Debian 12 ships 18.16: use schema-18.16.sql there).
-- Current releases read a JSON null into a plain column as its default
-- (input_format_null_as_default=1, on by default), so only the numbers
-- where 0 and "none" differ stay Nullable. Create it yourself (osprey's
-- --clickhouse-create makes the 18.16 table), then run Osprey without
-- --clickhouse-create: it inserts into whatever table has these columns.

CREATE DATABASE IF NOT EXISTS osprey;

CREATE TABLE IF NOT EXISTS osprey.transactions
(
    ts DateTime64(9) MATERIALIZED fromUnixTimestamp64Nano(ts_start_ns),
    node LowCardinality(String),
    source LowCardinality(String),
    protocol LowCardinality(String),
    ts_start_ns Int64 CODEC(Delta, ZSTD),
    ts_end_ns Int64 CODEC(Delta, ZSTD),
    latency_ns Nullable(UInt64),
    ttfb_ns Nullable(UInt64),
    method LowCardinality(String),
    target String CODEC(ZSTD),
    path String CODEC(ZSTD),
    host LowCardinality(String),
    http_version LowCardinality(String),
    status Nullable(UInt16),
    reason LowCardinality(String),
    req_header_count Nullable(UInt32),
    req_header_bytes Nullable(UInt64),
    resp_header_count Nullable(UInt32),
    resp_header_bytes Nullable(UInt64),
    req_body_bytes Nullable(UInt64),
    resp_body_bytes Nullable(UInt64),
    req_content_type LowCardinality(String),
    resp_content_type LowCardinality(String),
    pid Nullable(UInt32),
    tid Nullable(UInt32),
    comm LowCardinality(String),
    conn_id String,
    role LowCardinality(String),
    local_addr LowCardinality(String),
    local_port Nullable(UInt16),
    remote_addr LowCardinality(String),
    remote_port Nullable(UInt16),
    gap Bool,
    gap_cause Array(LowCardinality(String)),
    truncated Bool,
    no_response Bool,
    interim_status Nullable(UInt16),
    upgraded Bool,
    incomplete Bool,
    stream_id Nullable(UInt32),
    cgroup_id Nullable(UInt64),
    cgroup String,
    container_id LowCardinality(String),
    container_runtime LowCardinality(String),
    container_name LowCardinality(String),
    pod_uid String,
    pod_qos LowCardinality(String),
    pod_namespace LowCardinality(String),
    pod_name LowCardinality(String),
    workload LowCardinality(String),
    exe LowCardinality(String),
    tls Bool,
    tls_library LowCardinality(String),
    grpc_service LowCardinality(String),
    grpc_method LowCardinality(String),
    grpc_status Nullable(UInt32),
    grpc_message String
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (node, comm, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY
SETTINGS index_granularity = 8192;
