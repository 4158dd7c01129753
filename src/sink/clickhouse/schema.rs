// SPDX-License-Identifier: GPL-3.0-or-later
//! The table the ClickHouse sink inserts into, read from the shipped
//! `docs/clickhouse/schema-18.16.sql` (one text for both), with
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

/// The shipped schema: the one text of the table, read by
/// [`create_table`] (so the docs and `--clickhouse-create` cannot differ).
const SHIPPED: &str = include_str!("../../../docs/clickhouse/schema-18.16.sql");
const SHIPPED_NAME: &str = "CREATE TABLE IF NOT EXISTS osprey.transactions";

/// `CREATE TABLE` for database `db`, table `table` (ClickHouse 18.16 and
/// later): the shipped statement under another name.
pub fn create_table(db: &str, table: &str) -> String {
    let at = SHIPPED
        .find(SHIPPED_NAME)
        .expect("docs/clickhouse/schema-18.16.sql has the CREATE TABLE")
        + SHIPPED_NAME.len();
    let body = SHIPPED[at..].trim_end().trim_end_matches(';');
    format!("CREATE TABLE IF NOT EXISTS {db}.{table}{body}\n")
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
        assert!(cols.contains(&"tls".to_string()) && cols.contains(&"tls_library".to_string()));
        assert_eq!(cols.len(), 57);
    }

    #[test]
    fn the_current_release_schema_has_the_same_columns() {
        let cur = include_str!("../../../docs/clickhouse/schema-current.sql");
        let at = cur.find(SHIPPED_NAME).unwrap();
        let body = &cur[cur[at..].find('(').unwrap() + at + 1..cur.find("\n)").unwrap()];
        let names: Vec<String> = body
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        assert_eq!(names, columns());
    }
}
