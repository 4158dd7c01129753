// SPDX-License-Identifier: GPL-3.0-or-later
//! `osprey wire` on a capture file: see `osprey::fuzzing::wire_capture`
//! (src/fuzzing.rs) for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    osprey::fuzzing::wire_capture(data);
});
