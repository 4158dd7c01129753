// SPDX-License-Identifier: GPL-3.0-or-later
//! Replay ring-buffer records through decode → tracker → JSON lines, with
//! no BPF: the workload `scripts/bench-insns` counts instructions of.
//!
//!   replay [--conns 32] [--txns 200] [--body 100] [--proto h1|h2] [--record-format full|compact] [--from FILE] [--save FILE] [--out FILE]
//!
//! Without `--from`, the stream is nginx's side of `wrk` keep-alive traffic
//! (`osprey::replay::nginx_records`), or with `--proto h2` of `h2load` h2c
//! traffic (`osprey::replay::nginx_h2_records`); `--save` writes it to a file for
//! another build to replay; `--out` keeps the JSON lines (default: discarded);
//! `--record-format compact` writes them as `osprey --record-format compact`.
use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let (mut conns, mut txns, mut body) = (32u32, 200u64, 100usize);
    let (mut from, mut save, mut out, mut h2) = (None, None, None, false);
    let mut format = osprey::jsonline::RecordFormat::Full;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{a}: {e}"));
        match a.as_str() {
            "--conns" => conns = num(val()?)?.try_into().map_err(|_| "--conns too large")?,
            "--txns" => txns = num(val()?)?,
            "--body" => body = num(val()?)? as usize,
            "--from" => from = Some(val()?),
            "--save" => save = Some(val()?),
            "--out" => out = Some(val()?),
            "--proto" => {
                h2 = match val()?.as_str() {
                    "h1" => false,
                    "h2" => true,
                    p => return Err(format!("--proto h1 or h2, not {p}")),
                }
            }
            "--record-format" => {
                format = match val()?.as_str() {
                    "full" => osprey::jsonline::RecordFormat::Full,
                    "compact" => osprey::jsonline::RecordFormat::Compact,
                    f => return Err(format!("--record-format full or compact, not {f}")),
                }
            }
            "-h" | "--help" => {
                println!("replay [--conns N] [--txns N] [--body BYTES] [--proto h1|h2] [--record-format full|compact] [--from FILE] [--save FILE] [--out FILE]");
                return Ok(());
            }
            _ => return Err(format!("unknown argument {a} (try --help)")),
        }
    }
    let records = match &from {
        Some(f) => osprey::replay::read_stream(File::open(f).map_err(|e| format!("{f}: {e}"))?)
            .map_err(|e| format!("{f}: {e}"))?,
        None if h2 => osprey::replay::nginx_h2_records(conns, txns, body),
        None => osprey::replay::nginx_records(conns, txns, body),
    };
    if let Some(f) = &save {
        let w = BufWriter::new(File::create(f).map_err(|e| format!("{f}: {e}"))?);
        osprey::replay::write_stream(w, &records).map_err(|e| format!("{f}: {e}"))?;
    }
    let n = match &out {
        Some(f) => osprey::replay::run_as(
            &records,
            BufWriter::new(File::create(f).map_err(|e| format!("{f}: {e}"))?),
            format,
        ),
        None => osprey::replay::run_as(&records, std::io::sink(), format),
    }
    .map_err(|e| e.to_string())?;
    println!("records_in {} lines_out {n}", records.len());
    Ok(())
}
