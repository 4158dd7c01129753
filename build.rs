// SPDX-License-Identifier: GPL-3.0-or-later
//! Compiles bpf/osprey.bpf.c, bpf/osprey_nobtf.bpf.c and
//! bpf/osprey_btffile.bpf.c (with the bpf/*.bpf.h they include) with clang
//! and generates their libbpf-rs skeletons.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// (source, skeleton file): the CO-RE build and the BTF-less fallback.
const OBJECTS: [(&str, &str); 3] = [
    ("bpf/osprey.bpf.c", "osprey.skel.rs"),
    ("bpf/osprey_nobtf.bpf.c", "osprey_nobtf.skel.rs"),
    // --btf FILE on a kernel without its own BTF: no kfunc calls
    ("bpf/osprey_btffile.bpf.c", "osprey_btffile.skel.rs"),
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH");
    // vmlinux/<arch>/vmlinux.h, produced by scripts/gen-vmlinux.sh
    let vmlinux_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => other,
    };
    let vmlinux_dir = manifest.join("vmlinux").join(vmlinux_arch);
    let include_dir = manifest.join("include");
    // <linux/bpf.h> needs <asm/types.h> from the multiarch directory (the
    // BTF-less build uses uapi headers instead of vmlinux.h); -idirafter
    // keeps libbpf-cargo's own bpf_helpers.h first.
    let multiarch = format!("/usr/include/{arch}-linux-gnu");

    for (src, skel) in OBJECTS {
        SkeletonBuilder::new()
            .source(manifest.join(src))
            .clang_args([
                format!("-I{}", vmlinux_dir.display()),
                format!("-I{}", include_dir.display()),
                format!("-I{}", manifest.join("bpf").display()),
                "-idirafter".to_string(),
                multiarch.clone(),
                // v3: ALU32 and atomic fetch-add; clamped lengths stay provable.
                "-mcpu=v3".to_string(),
                "-Wall".to_string(),
                "-Werror".to_string(),
            ])
            .build_and_generate(out_dir.join(skel))
            .unwrap_or_else(|e| panic!("building {src}: {e:#}"));
        println!("cargo:rerun-if-changed={src}");
    }
    // every header the two objects include
    for entry in std::fs::read_dir(manifest.join("bpf")).expect("reading bpf/") {
        let path = entry.expect("reading bpf/").path();
        if path.extension().is_some_and(|e| e == "h") {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed=include/osprey.h");
    println!(
        "cargo:rerun-if-changed={}",
        vmlinux_dir.join("vmlinux.h").display()
    );

    // OSPREY_SKIP_LIVE=1: the live tests are compiled #[ignore]d, so the
    // test harness reports them as ignored, never as ok (tests/common/mod.rs)
    println!("cargo:rustc-check-cfg=cfg(osprey_skip_live)");
    println!("cargo:rerun-if-env-changed=OSPREY_SKIP_LIVE");
    if env::var("OSPREY_SKIP_LIVE").as_deref() == Ok("1") {
        println!("cargo:rustc-cfg=osprey_skip_live");
    }
}
