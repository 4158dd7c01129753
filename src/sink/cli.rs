// SPDX-License-Identifier: GPL-3.0-or-later
//! The sink options of `osprey run` and how they become one [`Sink`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::clickhouse::{
    ChConfig, ClickHouseSink, DEFAULT_BATCH_MS, DEFAULT_BATCH_ROWS, DEFAULT_QUEUE_BYTES,
};
use super::fanout::{Fanout, DEFAULT_QUEUE, DEFAULT_QUEUE_BYTES as SINK_QUEUE_BYTES};
use super::prometheus::{self, MetricsSink, Registry, Router};
use super::rotate::{parse_duration, parse_size, RotateConfig, RotatingFile, MIN_ROTATE_BYTES};
use super::{JsonlSink, Sink};
use crate::health::Health;

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s)
}
fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

#[derive(Args, Debug, Clone, Default)]
pub struct SinkArgs {
    /// -o FILE: start a new file before a record that would take it past
    /// SIZE (bytes, or 512K, 100M, 1G). Records are never split across files.
    #[arg(long, value_name = "SIZE", value_parser = size_arg, help_heading = "Output files")]
    pub rotate_size: Option<u64>,
    /// -o FILE: start a new file every DURATION (30s, 15m, 1h, 1d).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg, help_heading = "Output files")]
    pub rotate_interval: Option<Duration>,
    /// With rotation: files kept in all (FILE, FILE.1 newest … FILE.N-1);
    /// the oldest is deleted.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        help_heading = "Output files"
    )]
    pub rotate_keep: usize,
    /// Fields of transaction lines: `full` (every documented field) or
    /// `compact` (fields whose value is null and the ISO-8601 `ts_start`/
    /// `ts_end` left out; their `_ns` forms stay). Also the ClickHouse
    /// rows (missing columns are NULL). docs/output.md.
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "full",
        help_heading = "Output files"
    )]
    pub record_format: crate::jsonline::RecordFormat,
    /// Write no JSON lines (with --metrics-addr or --clickhouse).
    #[arg(long, help_heading = "Output files")]
    pub no_output: bool,
    /// A regular output file (-o, rotated, or stdout redirected to one)
    /// keeps 8 MiB of itself in the page cache: each MiB is written back
    /// as it fills and dropped 8 MiB later. For long runs where memory is
    /// tight (a pod's memory limit counts the page cache its writes fill);
    /// the writeback then runs in Osprey's thread, not later in the
    /// kernel's. docs/output.md.
    #[arg(long, help_heading = "Output files")]
    pub drop_page_cache: bool,

    /// Serve Prometheus metrics (RED metrics of the transactions, Osprey's
    /// health) at http://ADDR:PORT/metrics. A port already taken is an
    /// error at start.
    #[arg(long, value_name = "ADDR:PORT", help_heading = "Prometheus metrics")]
    pub metrics_addr: Option<String>,
    /// A route pattern for the `route` label, tried before the automatic
    /// templating (repeatable): segments `:name`, `{name}` or `*` match one
    /// segment, a final `**` the rest. E.g. /api/users/:id/orders.
    #[arg(long, value_name = "PATTERN", help_heading = "Prometheus metrics")]
    pub metrics_route: Vec<String>,
    /// Distinct `route` values kept; later ones are "__overflow__".
    #[arg(long, value_name = "N", default_value_t = prometheus::route::DEFAULT_CAP, help_heading = "Prometheus metrics")]
    pub metrics_max_routes: usize,
    /// Label sets kept per metric; transactions of further ones are
    /// counted in osprey_metrics_series_overflow_total.
    #[arg(long, value_name = "N", default_value_t = prometheus::DEFAULT_MAX_SERIES, help_heading = "Prometheus metrics")]
    pub metrics_max_series: usize,

    /// Insert transactions into ClickHouse over its HTTP interface
    /// (http://[USER[:PASSWORD]@]HOST:PORT), batched, as JSONEachRow.
    #[arg(long, value_name = "URL", help_heading = "ClickHouse")]
    pub clickhouse: Option<String>,
    #[arg(
        long,
        value_name = "NAME",
        default_value = "osprey",
        help_heading = "ClickHouse"
    )]
    pub clickhouse_database: String,
    #[arg(
        long,
        value_name = "NAME",
        default_value = "transactions",
        help_heading = "ClickHouse"
    )]
    pub clickhouse_table: String,
    /// Create the database and table if they do not exist
    /// (docs/clickhouse/schema-18.16.sql).
    #[arg(long, help_heading = "ClickHouse")]
    pub clickhouse_create: bool,
    /// Rows per insert at most.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_BATCH_ROWS,
        help_heading = "ClickHouse"
    )]
    pub clickhouse_batch_rows: usize,
    /// Longest a row waits for its batch to fill, in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = DEFAULT_BATCH_MS,
        help_heading = "ClickHouse"
    )]
    pub clickhouse_batch_ms: u64,
    /// Rows held in memory while ClickHouse does not answer; older ones go
    /// to the spool, or are dropped (counted) without one.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100_000,
        help_heading = "ClickHouse"
    )]
    pub clickhouse_queue: u64,
    /// Bytes of batches held in memory (or 512K, 64M …) while ClickHouse
    /// does not answer; past it as past --clickhouse-queue.
    #[arg(long, value_name = "SIZE", value_parser = size_arg, default_value_t = DEFAULT_QUEUE_BYTES, help_heading = "ClickHouse")]
    pub clickhouse_queue_bytes: u64,
    /// Keep batches that could not be delivered in DIR (mode 0700), replay
    /// them when ClickHouse answers again, also in a later run.
    #[arg(long, value_name = "DIR", help_heading = "ClickHouse")]
    pub clickhouse_spool: Option<PathBuf>,
    /// Most bytes the spool may hold (or 512M, 1G …); batches past it are
    /// dropped and counted.
    #[arg(long, value_name = "SIZE", value_parser = size_arg, default_value = "1G", help_heading = "ClickHouse")]
    pub clickhouse_spool_max: u64,

    /// Records queued per sink that runs in a thread of its own and takes
    /// records; past it that sink drops them (counted, sink_dropped). No
    /// built-in sink does now: the metrics are counted in place, and the
    /// ClickHouse sink's queue holds lines (--sink-queue-bytes).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_QUEUE)]
    pub sink_queue: usize,
    /// Bytes of JSON lines queued for a sink that takes lines (ClickHouse:
    /// transactions are serialised once and shared with the file); past it
    /// that sink drops them (counted, sink_dropped).
    #[arg(long, value_name = "SIZE", value_parser = size_arg, default_value_t = SINK_QUEUE_BYTES)]
    pub sink_queue_bytes: u64,
}

impl SinkArgs {
    pub fn validate(&self, output: Option<&Path>) -> Result<()> {
        let rotating = self.rotate_size.is_some() || self.rotate_interval.is_some();
        if rotating && output.is_none_or(|p| p.as_os_str() == "-") {
            bail!("--rotate-size/--rotate-interval rotate the file of -o FILE: give one");
        }
        if let Some(s) = self.rotate_size {
            if s < MIN_ROTATE_BYTES {
                bail!("--rotate-size {s}: at least {MIN_ROTATE_BYTES} bytes");
            }
        }
        if self.rotate_keep == 0 {
            bail!("--rotate-keep 0: at least 1 (the file being written)");
        }
        if self.no_output && output.is_some() {
            bail!("--no-output and -o: choose one");
        }
        if self.no_output && self.drop_page_cache {
            bail!(
                "--drop-page-cache applies to the JSON-lines output, and --no-output writes none"
            );
        }
        if self.no_output && self.metrics_addr.is_none() && self.clickhouse.is_none() {
            bail!("--no-output: nothing would be written (add --metrics-addr or --clickhouse)");
        }
        if self.metrics_max_routes == 0 || self.metrics_max_series == 0 {
            bail!("--metrics-max-routes and --metrics-max-series: at least 1");
        }
        if self.clickhouse_batch_rows == 0
            || self.clickhouse_batch_ms == 0
            || self.clickhouse_queue == 0
        {
            bail!(
                "--clickhouse-batch-rows, --clickhouse-batch-ms and --clickhouse-queue: at least 1"
            );
        }
        if self.sink_queue == 0 || self.sink_queue_bytes == 0 || self.clickhouse_queue_bytes == 0 {
            bail!("--sink-queue, --sink-queue-bytes and --clickhouse-queue-bytes: at least 1");
        }
        Router::new(&self.metrics_route, 1).map_err(anyhow::Error::msg)?;
        if let Some(u) = &self.clickhouse {
            super::http::Url::parse(u).map_err(|e| anyhow::anyhow!("--clickhouse {e}"))?;
        }
        Ok(())
    }

    /// Whether the record stream is the only sink (the pipeline then
    /// writes it directly, as before this module existed).
    pub fn only_jsonl(&self) -> bool {
        self.metrics_addr.is_none() && self.clickhouse.is_none()
    }

    /// The sink of a run: the JSON lines (stdout, `-o FILE`, rotated), and
    /// behind a [`Fanout`] the metrics and ClickHouse sinks. Errors (a file
    /// that cannot be created, a port taken, a ClickHouse that refuses) come
    /// now, before the probe loads.
    pub fn build(
        &self,
        output: Option<&Path>,
        force: bool,
        health: Arc<Health>,
        node: Option<&str>,
    ) -> Result<Box<dyn Sink>> {
        let name = output.unwrap_or("-".as_ref()).display().to_string();
        let jsonl: Option<Box<dyn Sink>> = if self.no_output {
            None
        } else {
            let rc = RotateConfig {
                max_bytes: self.rotate_size,
                interval: self.rotate_interval,
                keep: self.rotate_keep,
            };
            Some(match output {
                Some(p) if rc.active() => {
                    let mut w = RotatingFile::create(p, force, rc)
                        .with_context(|| format!("opening output {name}"))?;
                    if self.drop_page_cache {
                        w = w.dropping_page_cache();
                    }
                    Box::new(
                        JsonlSink::new(Box::new(w) as Box<dyn std::io::Write + Send>)
                            .with_format(self.record_format),
                    )
                }
                _ => Box::new(
                    JsonlSink::open(output, force, self.drop_page_cache)
                        .with_context(|| format!("opening output {name}"))?
                        .with_format(self.record_format),
                ),
            })
        };
        if self.only_jsonl() {
            return Ok(jsonl.expect("validate: --no-output needs another sink"));
        }
        let mut f = Fanout::new(jsonl).with_format(self.record_format);
        if let Some(addr) = &self.metrics_addr {
            let router = Router::new(&self.metrics_route, self.metrics_max_routes)
                .map_err(anyhow::Error::msg)?;
            let reg = Arc::new(Mutex::new(Registry::new(router, self.metrics_max_series)));
            let srv = prometheus::server::start(addr, reg.clone(), health)?;
            log::info!("metrics at http://{}/metrics", srv.addr);
            // counted in place: no queue, no thread (see MetricsSink)
            f.add_inline("metrics", Box::new(MetricsSink::new(reg)));
        }
        if let Some(u) = &self.clickhouse {
            let url =
                super::http::Url::parse(u).map_err(|e| anyhow::anyhow!("--clickhouse {e}"))?;
            let mut c = ChConfig::new(url);
            c.database = self.clickhouse_database.clone();
            c.table = self.clickhouse_table.clone();
            c.create = self.clickhouse_create;
            c.batch_rows = self.clickhouse_batch_rows;
            c.interval = Duration::from_millis(self.clickhouse_batch_ms);
            c.queue_rows = self.clickhouse_queue;
            c.queue_bytes = self.clickhouse_queue_bytes;
            c.spool = self.clickhouse_spool.clone();
            c.spool_max = self.clickhouse_spool_max;
            c.node = crate::identity::node_name(node).unwrap_or_default();
            let s = ClickHouseSink::connect(c).map_err(anyhow::Error::msg)?;
            f.add(
                "clickhouse",
                Box::new(s),
                self.sink_queue,
                self.sink_queue_bytes,
            );
        }
        Ok(Box::new(f))
    }
}
