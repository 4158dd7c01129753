// SPDX-License-Identifier: GPL-3.0-or-later
//! A Go `.gopclntab` function table (and the same bytes as an ELF file and
//! as x86-64 code): see `osprey::fuzzing::go_pclntab` (src/fuzzing.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    osprey::fuzzing::go_pclntab(data);
});
