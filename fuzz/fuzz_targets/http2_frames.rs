// SPDX-License-Identifier: GPL-3.0-or-later
//! See `osprey::fuzzing::http2_frames` (src/fuzzing.rs) for the input layout
//! and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    osprey::fuzzing::http2_frames(data);
});
