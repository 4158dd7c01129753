// SPDX-License-Identifier: GPL-3.0-or-later
//! Monotonic (bpf_ktime_get_ns) → wall-clock mapping and ISO-8601 formatting.

fn clock_ns(clk: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(clk, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// CLOCK_MONOTONIC now, in ns (the clock of `bpf_ktime_get_ns`).
pub fn mono_now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

/// `realtime - monotonic`, sampled so that epoch_ns = mono_ns + offset.
/// Takes the tightest of a few samples.
pub fn realtime_offset_ns() -> i64 {
    let mut best: Option<(i128, i128)> = None;
    for _ in 0..5 {
        let a = clock_ns(libc::CLOCK_MONOTONIC);
        let r = clock_ns(libc::CLOCK_REALTIME);
        let b = clock_ns(libc::CLOCK_MONOTONIC);
        let width = b - a;
        let off = r - (a + width / 2);
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, off));
        }
    }
    best.map(|(_, o)| o as i64).unwrap_or(0)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's civil_from_days).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Length of an ISO-8601 time as written by [`format_iso8601`].
pub const ISO_LEN: usize = 30;

/// Writes epoch ns as e.g. "2026-11-29T15:30:00.123456789Z" into `b`,
/// without allocating (years of the i64 nanosecond range, 1677..2262,
/// always have four digits). The one ISO-8601 formatter of Osprey.
pub fn format_iso8601(epoch_ns: i64, b: &mut [u8; ISO_LEN]) -> &str {
    // ASCII digits and separators only
    std::str::from_utf8(format_iso8601_bytes(epoch_ns, b)).unwrap_or("")
}

/// Two ASCII digits of each of 0..100 (two digits per step instead of one).
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

fn pair(b: &mut [u8], v: u64) {
    let i = (v % 100) as usize * 2;
    b[0] = PAIRS[i];
    b[1] = PAIRS[i + 1];
}

thread_local! {
    /// The second last formatted and its "YYYY-MM-DDTHH:MM:SS." (records
    /// come in time order: most share the second of the one before).
    static LAST_SECOND: std::cell::Cell<(i64, [u8; 20])> =
        const { std::cell::Cell::new((i64::MIN, [0; 20])) };
}

/// [`format_iso8601`] as bytes (no UTF-8 check): the JSON writer's path.
/// The date and time of day are computed once per second (per thread),
/// the nanoseconds every time.
pub fn format_iso8601_bytes(epoch_ns: i64, b: &mut [u8; ISO_LEN]) -> &[u8; ISO_LEN] {
    let secs = epoch_ns.div_euclid(1_000_000_000);
    let nanos = epoch_ns.rem_euclid(1_000_000_000) as u64;
    let (last, mut prefix) = LAST_SECOND.get();
    if last != secs {
        prefix = second_prefix(secs);
        LAST_SECOND.set((secs, prefix));
    }
    b[..20].copy_from_slice(&prefix);
    // nanoseconds: 9 digits, the first alone then four pairs
    b[20] = b'0' + (nanos / 100_000_000) as u8;
    pair(&mut b[21..23], nanos / 1_000_000);
    pair(&mut b[23..25], nanos / 10_000);
    pair(&mut b[25..27], nanos / 100);
    pair(&mut b[27..29], nanos);
    b[29] = b'Z';
    b
}

/// "YYYY-MM-DDTHH:MM:SS." of epoch second `secs`.
fn second_prefix(secs: i64) -> [u8; 20] {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    let mut b = *b"0000-00-00T00:00:00.";
    let y = y.clamp(0, 9999) as u64;
    pair(&mut b[0..2], y / 100);
    pair(&mut b[2..4], y);
    pair(&mut b[5..7], m as u64);
    pair(&mut b[8..10], d as u64);
    pair(&mut b[11..13], sod / 3600);
    pair(&mut b[14..16], (sod / 60) % 60);
    pair(&mut b[17..19], sod % 60);
    b
}

/// Epoch ns → "2026-11-29T15:30:00.123456789Z".
pub fn iso8601(epoch_ns: i64) -> String {
    format_iso8601(epoch_ns, &mut [0u8; ISO_LEN]).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_known_points() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            iso8601(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            iso8601(1_795_966_200_123_456_789),
            "2026-11-29T15:30:00.123456789Z"
        );
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn iso_same_and_next_second_after_a_cached_one() {
        // the per-second prefix is cached: alternate seconds, and nanos
        // within one, must each come out whole
        let t = 1_795_966_200_000_000_000i64;
        for (ns, want) in [
            (t + 5, "2026-11-29T15:30:00.000000005Z"),
            (t + 999_999_999, "2026-11-29T15:30:00.999999999Z"),
            (t + 1_000_000_000, "2026-11-29T15:30:01.000000000Z"),
            (t + 123_456_789, "2026-11-29T15:30:00.123456789Z"),
            (t - 1, "2026-11-29T15:29:59.999999999Z"),
            (t + 86_400_000_000_000, "2026-11-30T15:30:00.000000000Z"),
        ] {
            assert_eq!(iso8601(ns), want);
            assert_eq!(iso8601(ns), want, "cached");
        }
    }

    #[test]
    fn iso_far_points() {
        assert_eq!(
            iso8601(4_102_444_799_000_000_000),
            "2099-12-31T23:59:59.000000000Z"
        );
        assert_eq!(iso8601(i64::MIN), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(iso8601(i64::MAX), "2262-04-11T23:47:16.854775807Z");
    }

    #[test]
    fn civil_roundtrip_against_naive_count() {
        // Walk day by day from 1900 to 2200 comparing with a naive calendar.
        let mut y = 1900i64;
        let mut m = 1u32;
        let mut d = 1u32;
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let dim = |y: i64, m: u32| match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            _ => {
                if leap(y) {
                    29
                } else {
                    28
                }
            }
        };
        let start = -25_567i64; // 1900-01-01
        for z in start..start + 110_000 {
            assert_eq!(civil_from_days(z), (y, m, d), "day {z}");
            d += 1;
            if d > dim(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn offset_maps_to_now() {
        let off = realtime_offset_ns();
        let wall = mono_now_ns() as i64 + off;
        let real = clock_ns(libc::CLOCK_REALTIME) as i64;
        assert!((wall - real).abs() < 50_000_000, "{wall} vs {real}");
    }
}
