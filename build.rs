// SPDX-License-Identifier: GPL-3.0-or-later
//! Compiles bpf/osprey.bpf.c with clang and generates the libbpf-rs skeleton.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/osprey.bpf.c";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("osprey.skel.rs");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH");
    // vmlinux/<arch>/vmlinux.h, produced by scripts/gen-vmlinux.sh
    let vmlinux_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => other,
    };
    let vmlinux_dir = manifest.join("vmlinux").join(vmlinux_arch);
    let include_dir = manifest.join("include");

    SkeletonBuilder::new()
        .source(manifest.join(SRC))
        .clang_args([
            format!("-I{}", vmlinux_dir.display()),
            format!("-I{}", include_dir.display()),
            // v3: ALU32 and atomic fetch-add; clamped lengths stay provable.
            "-mcpu=v3".to_string(),
            "-Wall".to_string(),
            "-Werror".to_string(),
        ])
        .build_and_generate(&out)
        .unwrap_or_else(|e| panic!("building {SRC}: {e:#}"));

    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=include/osprey.h");
    println!("cargo:rerun-if-changed={}", vmlinux_dir.join("vmlinux.h").display());
}
