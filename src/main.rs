// SPDX-License-Identifier: GPL-3.0-or-later
//! osprey: host-side eBPF transaction probe (CLI). The flags are in
//! `cli`, the capture in `run`; everything past the ring buffer is the
//! `osprey` library.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod run;

use cli::{Cli, Cmd};
use osprey::check;

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(format!("osprey={level},{level}")),
    )
    .format_timestamp_millis()
    .target(env_logger::Target::Stderr)
    .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = match &cli.cmd {
        Some(Cmd::Run(r)) => r.verbose,
        _ => cli.run.verbose,
    };
    init_logging(verbose);
    let res = match cli.cmd {
        None => run::run(cli.run),
        Some(Cmd::Run(r)) => run::run(r),
        Some(Cmd::Check(c)) => check::run(
            !c.no_mount,
            &osprey::tls::attach::Allow {
                pids: c.pids,
                comms: c.comms,
            },
        ),
        Some(Cmd::Wire(w)) => match osprey::wire::wire_cmd(&w) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Some(Cmd::ReconDiff(r)) => {
            return match osprey::recon::recon_cmd(&r) {
                Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
                Err(e) => {
                    eprintln!("osprey: error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "osprey: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cli::validate::*;
    use cli::*;
    use std::time::Duration;

    fn args(a: &[&str]) -> RunArgs {
        Cli::try_parse_from(std::iter::once("osprey").chain(a.iter().copied()))
            .unwrap()
            .run
    }

    /// clap checks its definitions (unique names, valid defaults) only in
    /// debug builds when parsing; this checks them in every build.
    #[test]
    fn the_command_line_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn long_comms_are_shown_as_the_kernel_keeps_them() {
        assert_eq!(kept_comm("nginx"), "nginx");
        assert_eq!(kept_comm("a-very-long-process-name"), "a-very-long-pro");
        // 'é' is two bytes: the 15th byte is the first half of the 8th
        assert_eq!(kept_comm("ééééééééé"), "ééééééé\\xc3");
        assert_eq!(kept_comm("€€€€€€"), "€€€€€"); // 3-byte chars: 15 bytes exactly
        assert_eq!(kept_comm("x€€€€€"), "x€€€€\\xe2\\x82");
    }

    #[test]
    fn a_poll_never_outlasts_the_run() {
        assert_eq!(poll_interval(&args(&[])), Duration::from_millis(50));
        assert_eq!(
            poll_interval(&args(&["--poll-ms", "0"])),
            Duration::from_millis(1)
        );
        assert_eq!(
            poll_interval(&args(&["--poll-ms", "900", "--duration", "0.2"])),
            Duration::from_millis(200)
        );
        assert_eq!(
            poll_interval(&args(&["--poll-ms", "900", "--duration", "1e-9"])),
            Duration::from_millis(1)
        );
        assert_eq!(
            poll_interval(&args(&["--poll-ms", "900", "--duration", "5"])),
            Duration::from_millis(900)
        );
    }

    #[test]
    fn numeric_flags_out_of_range_are_errors() {
        for bad in [
            &["--duration", "1e300"][..],
            &["--duration", "inf"],
            &["--duration", "NaN"],
            &["--duration", "0"],
            &["--duration", "-1"],
            &["--poll-ms", "1001"],
            &["--poll-ms", "18446744073709551615"],
            &["--capture-bytes", "16385"],
            &["--iov-whole", "16385"],
            &["--capture-max-per-call", "1052673"],
            &["--ringbuf-size", "4095"],
            &["--ringbuf-size", "12288"],
            &["--workers", "65"],
            &["--rotate-size", "1M"],
            &["-o", "-", "--rotate-interval", "1h"],
            &["-o", "x", "--rotate-size", "100"],
            &["-o", "x", "--rotate-size", "1M", "--rotate-keep", "0"],
            &["--no-output"],
            &["--no-output", "-o", "x", "--metrics-addr", "127.0.0.1:1"],
            &["--clickhouse", "ftp://x"],
            &["--clickhouse", "https://x"],
            &[
                "--metrics-addr",
                "127.0.0.1:1",
                "--metrics-route",
                "no-slash",
            ],
            &["--metrics-addr", "127.0.0.1:1", "--metrics-max-routes", "0"],
            &["--synthetic", "--synthetic-txns", "18446744073709551615"],
            &[
                "--synthetic",
                "--synthetic-conns",
                "300",
                "--synthetic-txns",
                "300",
            ],
        ] {
            assert!(validate(&args(bad)).is_err(), "{bad:?} accepted");
        }
        for good in [
            &["--duration", "1e9"][..],
            &["--poll-ms", "1000", "--duration", "0.001"],
            &["--idle-timeout", "18446744073709551615"],
            &[
                "--wakeup-bytes",
                "18446744073709551615",
                "--wakeup-records",
                "4294967295",
            ],
            &["--synthetic", "--synthetic-conns", "18446744073709551615"],
            &[
                "--synthetic",
                "--synthetic-conns",
                "1",
                "--synthetic-txns",
                "40000",
            ],
            &["--comm", "ééééééééé"],
            &[
                "-o",
                "x",
                "--rotate-size",
                "100M",
                "--rotate-interval",
                "1d",
                "--rotate-keep",
                "1",
            ],
            &[
                "--no-output",
                "--metrics-addr",
                "127.0.0.1:1",
                "--metrics-route",
                "/u/:id/**",
            ],
            &[
                "--clickhouse",
                "http://u:p@h:8123",
                "--clickhouse-spool-max",
                "10M",
            ],
            &["--capture-max-per-call", "1052672"],
            &["--capture-max-per-call", "0"],
        ] {
            validate(&args(good)).unwrap();
        }
    }
}
