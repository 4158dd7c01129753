// SPDX-License-Identifier: GPL-3.0-or-later
//! TLS plaintext capture, user-space side: which files hold a TLS library
//! (`/proc/PID/maps`, the usual library directories), and which uprobes go
//! on them. Platform-independent and unit-tested here; attaching them
//! (libbpf) is [`attach`].
//!
//! The kernel side is `bpf/tls_hooks.bpf.h`: entry and return uprobes on
//! `SSL_read`, `SSL_write`, `SSL_read_ex`, `SSL_write_ex`, and `SSL_free`.
//! Uprobes are attached once per library *file* (device and inode) for
//! every process (pid -1); the process allowlist is applied in the kernel.

pub mod attach;
pub mod elf;
pub mod go;
pub mod gobin;
pub mod procmaps;

use crate::event::TlsLibrary;

/// The first kernel whose JIT gives uprobe programs a per-CPU private
/// stack (6.13): they run preemptible, so a run preempted by another run
/// of the same program on that CPU would have its stack overwritten. The
/// CO-RE object turns preemption off around them (`bpf_preempt_disable()`,
/// a kfunc, bpf/compat.bpf.h); the objects without kfuncs (BTF-less, and
/// CO-RE for `--btf FILE` on a kernel without its own BTF) give each
/// uprobe program three busy slots per CPU, each with a stack of its own,
/// instead: a run that finds them all taken is dropped and counted
/// (`tls_reentry_dropped`).
pub const PRIVATE_STACK_KERNEL: (u32, u32) = (6, 13);

/// What the busy-slot guard of the objects without kfuncs means on the
/// kernel of `release` (`osprey check`), or `None` before 6.13, where
/// uprobe programs have no private stack.
pub fn kfuncless_uprobe_guard(release: &str) -> Option<String> {
    let v = crate::check::kernel_version(release)?;
    (v >= PRIVATE_STACK_KERNEL).then(|| {
        format!(
            "kernel {release} runs uprobe programs preemptible on per-CPU private stacks (6.13+); \
             without the kernel's own BTF preemption cannot be turned off around them (a kfunc), \
             so each program has three busy slots per CPU, each with a stack of its own: a run \
             that finds them all taken is dropped and counted (tls_reentry_dropped)"
        )
    })
}

/// One uprobe: a program of the BPF object on a function of the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The BPF program (bpf/tls_hooks.bpf.h).
    pub prog: &'static str,
    /// The function it goes on.
    pub func: &'static str,
    /// At the function's return (uretprobe).
    pub ret: bool,
    /// Without it the library is not captured (the others are optional:
    /// `SSL_read_ex`/`SSL_write_ex` are OpenSSL 1.1.1+, absent from BoringSSL).
    pub required: bool,
}

const fn p(prog: &'static str, func: &'static str, ret: bool, required: bool) -> Probe {
    Probe {
        prog,
        func,
        ret,
        required,
    }
}

/// OpenSSL 1.1.1 and 3.x. Return probes first: a call whose entry was
/// seen must find its return probe attached (an entry without a return
/// leaves a stale entry in `tls_calls`).
pub const OPENSSL_PROBES: [Probe; 9] = [
    p("tls_openssl_read_ret", "SSL_read", true, true),
    p("tls_openssl_write_ret", "SSL_write", true, true),
    p("tls_openssl_read_ret", "SSL_read_ex", true, false),
    p("tls_openssl_write_ret", "SSL_write_ex", true, false),
    p("tls_openssl_read", "SSL_read", false, true),
    p("tls_openssl_write", "SSL_write", false, true),
    p("tls_openssl_read_ex", "SSL_read_ex", false, false),
    p("tls_openssl_write_ex", "SSL_write_ex", false, false),
    p("tls_ssl_free", "SSL_free", false, false),
];

/// BoringSSL: the same API, its own record codes.
pub const BORINGSSL_PROBES: [Probe; 9] = [
    p("tls_boringssl_read_ret", "SSL_read", true, true),
    p("tls_boringssl_write_ret", "SSL_write", true, true),
    p("tls_boringssl_read_ret", "SSL_read_ex", true, false),
    p("tls_boringssl_write_ret", "SSL_write_ex", true, false),
    p("tls_boringssl_read", "SSL_read", false, true),
    p("tls_boringssl_write", "SSL_write", false, true),
    p("tls_boringssl_read_ex", "SSL_read_ex", false, false),
    p("tls_boringssl_write_ex", "SSL_write_ex", false, false),
    p("tls_ssl_free", "SSL_free", false, false),
];

/// The uprobes for `lib`.
pub fn probes(lib: TlsLibrary) -> &'static [Probe] {
    match lib {
        TlsLibrary::OpenSsl => &OPENSSL_PROBES,
        TlsLibrary::BoringSsl => &BORINGSSL_PROBES,
        TlsLibrary::Go => &[],
    }
}

/// A shared TLS library by its file name (`libssl.so.3`, `libssl.so.1.1`,
/// `libssl.so`): OpenSSL's libssl (BoringSSL builds are linked statically
/// in practice, found in the executable).
pub fn library_by_name(path: &str) -> Option<TlsLibrary> {
    let name = path.rsplit('/').next()?;
    // "libssl.so", "libssl.so.3", "libssl3.so" is NSS: not OpenSSL
    let rest = name.strip_prefix("libssl.so")?;
    (rest.is_empty() || rest.starts_with('.')).then_some(TlsLibrary::OpenSsl)
}

/// Directories where shared libraries are installed, looked at once at
/// start: a library there is attached before any process loads it, so a
/// program started later (curl, a Python script importing `ssl`) is
/// captured from its first call.
pub const LIBRARY_DIRS: [&str; 7] = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
];

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_flag_guard_is_named_from_the_private_stack_kernel_on() {
        assert!(super::kfuncless_uprobe_guard("6.12.118+deb13-amd64").is_none());
        assert!(super::kfuncless_uprobe_guard("6.1.0-57-amd64").is_none());
        assert!(super::kfuncless_uprobe_guard("6.13.0").is_some());
        assert!(super::kfuncless_uprobe_guard("7.3.4+deb13-amd64").is_some());
        assert!(super::kfuncless_uprobe_guard("unknown").is_none());
    }

    use super::*;

    #[test]
    fn libssl_names() {
        for n in [
            "/usr/lib/x86_64-linux-gnu/libssl.so.3",
            "/lib/libssl.so.1.1",
            "libssl.so",
            "/opt/x/libssl.so.3.0.13",
        ] {
            assert_eq!(library_by_name(n), Some(TlsLibrary::OpenSsl), "{n}");
        }
        for n in [
            "/usr/lib/x86_64-linux-gnu/libssl3.so",
            "/usr/lib/libsslx.so",
            "/usr/lib/libcrypto.so.3",
            "/usr/lib/libssl.so-old/x",
            "",
        ] {
            assert_eq!(library_by_name(n), None, "{n}");
        }
    }

    #[test]
    fn return_probes_come_first_and_every_function_has_both() {
        for lib in [TlsLibrary::OpenSsl, TlsLibrary::BoringSsl] {
            let ps = probes(lib);
            let first_entry = ps.iter().position(|p| !p.ret).unwrap();
            assert!(ps[first_entry..].iter().all(|p| !p.ret));
            for e in ps.iter().filter(|p| !p.ret && p.func != "SSL_free") {
                assert!(
                    ps.iter()
                        .any(|r| r.ret && r.func == e.func && r.required == e.required),
                    "{e:?}"
                );
            }
        }
    }

    #[test]
    fn probe_programs_exist_in_the_bpf_source() {
        let src = include_str!("../../bpf/tls_hooks.bpf.h");
        for p in OPENSSL_PROBES.iter().chain(&BORINGSSL_PROBES) {
            // the programs are made by OSPREY_SSL_PROBES(lib, LIB)
            let (lib, rest) = p
                .prog
                .strip_prefix("tls_")
                .and_then(|r| r.split_once('_'))
                .unwrap();
            if lib == "ssl" {
                assert!(src.contains(&format!("tls_{lib}_{rest}")), "{}", p.prog);
            } else {
                assert!(
                    src.contains(&format!("OSPREY_SSL_PROBES({lib},")),
                    "{}",
                    p.prog
                );
                assert!(src.contains(&format!("tls_##lib##_{rest},")), "{}", p.prog);
            }
        }
    }
}
